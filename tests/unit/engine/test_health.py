"""Which engine the health check names (CondorDockerEngine) beside DockerVersion's `docker -v` form."""
from condor_docker.engine.health import docker_version_line, engine_line

# Trimmed from the real /version replies of Debian 12's docker.io 20.10 and podman 4.3.1.
DOCKER = {"Components": [{"Name": "Engine", "Version": "20.10.24+dfsg1"}],
          "Version": "20.10.24+dfsg1", "GitCommit": "5d6db84"}
PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"},
                         {"Name": "Conmon", "Version": "conmon version 2.1.6"}],
          "Version": "4.3.1", "GitCommit": ""}


def test_docker_is_named_docker():
    assert engine_line(DOCKER) == "docker 20.10.24+dfsg1"


def test_podman_is_named_podman_and_docker_version_keeps_its_form():
    assert engine_line(PODMAN) == "podman 4.3.1"
    assert docker_version_line(PODMAN) == "Docker version 4.3.1"


def test_odd_components_fall_back_to_docker():
    assert engine_line({"Version": "x", "Components": ["junk", None]}) == "docker x"
    assert engine_line({}) == "docker unknown"
