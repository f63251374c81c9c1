"""One pool node container at a time: the refusal without a secret, and ssh into the access point.

Uses the pool image of test_pool_containers (built once per module there or
here: the build is cached). Host network, loopback ports; every container is
named condor-docker-roles-test-* and removed even when a step fails.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest
from pooltest import docker

pytestmark = pytest.mark.roles


@pytest.fixture
def node_name():
    name = f"condor-docker-roles-test-{secrets.token_hex(3)}"
    yield name
    docker("rm", "-f", name, check=False)
    assert name not in docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_node_without_a_secret_refuses_to_start(pool_image, node_name):
    done = docker("run", "--name", node_name, "--network", "host", pool_image, "--role", "access-point",
                  "--central-manager", f"127.0.0.1:{_free_port()}", timeout=120, check=False)
    assert done.returncode == 2
    assert "refusing to start: no pool secret at /etc/condor_docker/secrets/pool-password" in done.stderr
    assert "--insecure" in done.stderr


def test_ssh_login_to_the_access_point_with_a_key_only(pool_image, node_name, tmp_path):
    if not shutil.which("ssh"):
        pytest.skip("no ssh client: apt-get install openssh-client")
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    port = _free_port()
    docker("run", "-d", "--name", node_name, "--network", "host", "-v", f"{keys}:/keys:ro", pool_image,
           "--role", "access-point", "--central-manager", f"127.0.0.1:{_free_port()}", "--port", str(_free_port()),
           "--network-interface", "127.0.0.1", "--insecure",
           "--ssh-user", "submitter", "--ssh-authorized-keys", "/keys/id.pub", "--ssh-port", str(port),
           "--ssh-listen", "127.0.0.1")
    base = ["ssh", "-p", str(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
    deadline, done = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        done = subprocess.run(base + ["-i", str(keys / "id"), "submitter@127.0.0.1", "id -un; id -u"],
                              capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            break
        time.sleep(1)
    assert done is not None and done.returncode == 0, done.stderr + docker("logs", node_name).stderr[-2000:]
    name, uid = done.stdout.split()
    assert name == "submitter" and int(uid) != 0
    # root never logs in, and without --ssh-allow-password no password is asked for
    root = subprocess.run(base + ["-i", str(keys / "id"), "root@127.0.0.1", "true"], capture_output=True,
                          text=True, timeout=30)
    assert root.returncode != 0
    password = subprocess.run(base + ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                                      "submitter@127.0.0.1", "true"], capture_output=True, text=True, timeout=30)
    assert password.returncode != 0 and "Permission denied" in password.stderr
    docker("stop", "-t", "60", node_name, timeout=90)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", node_name).stdout.strip() == "0"
    assert os.path.exists(keys / "id.pub")


def test_unreachable_config_url_stops_the_node_with_a_clear_error(pool_image, node_name, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(secrets.token_urlsafe(32))
    secret.chmod(0o600)
    url = f"https://127.0.0.1:{_free_port()}/site.conf"  # nobody listens there
    done = docker("run", "--name", node_name, "--network", "host", "-v", f"{secret}:/s:ro", pool_image,
                  "--role", "central-manager", "--central-manager", f"127.0.0.1:{_free_port()}",
                  "--password-file", "/s", "--config", url, "--config-timeout", "3", timeout=120, check=False)
    assert done.returncode == 2
    assert f"cannot fetch injected config {url} within 3 s" in done.stderr
