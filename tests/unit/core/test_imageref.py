"""Image references: normalising, invalid ones held, registry and tag, universe = container images."""
from __future__ import annotations

import pytest

from condor_docker.core import imageref
from condor_docker.core.failures import Code, Failure, Kind


@pytest.mark.parametrize("given,normalised", [
    ("busybox", "busybox:latest"),
    ("127.0.0.1:5000/img", "127.0.0.1:5000/img:latest"),
    ("127.0.0.1:5000/img:1", "127.0.0.1:5000/img:1"),
    ("localhost/a/b", "localhost/a/b:latest"),
    ("reg.example.org:443/team/app:v1.2-rc", "reg.example.org:443/team/app:v1.2-rc"),
    ("a/b@sha256:" + "0" * 64, "a/b@sha256:" + "0" * 64),
])
def test_normalise(given, normalised):
    assert imageref.normalize(given) == normalised


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a b", "x::1", "a/b:", "-lead", "bad_host:x/y"])
def test_invalid_references_are_holds(bad):
    with pytest.raises(Failure) as caught:
        imageref.normalize(bad)
    assert caught.value.code is Code.INVALID_IMAGE and caught.value.kind is Kind.HOLD


@pytest.mark.parametrize("port", ["99999", "65536", "0", "00", "1" + "0" * 30])
def test_a_registry_port_that_is_no_tcp_port_is_an_invalid_image_not_a_transient_error(port):
    """`127.0.0.1:99999/x:1` reached the engine, whose connect failure was a requeue, then hold 19."""
    with pytest.raises(Failure) as caught:
        imageref.normalize(f"127.0.0.1:{port}/x:1")
    assert caught.value.code is Code.INVALID_IMAGE and caught.value.kind is Kind.HOLD
    assert f"the registry port {port} is not a TCP port (1 to 65535)" in caught.value.reason
    assert imageref.normalize("127.0.0.1:65535/x:1") == "127.0.0.1:65535/x:1"
    assert imageref.normalize("reg:1/x") == "reg:1/x:latest"


def test_a_docker_url_in_docker_image_says_it_is_container_image_syntax():
    with pytest.raises(Failure) as caught:
        imageref.normalize("docker://127.0.0.1:5000/img:1")
    assert caught.value.code is Code.INVALID_IMAGE
    assert caught.value.reason == ("Invalid docker_image 'docker://127.0.0.1:5000/img:1': docker:// is container_image "
                                   "syntax; write docker_image = 127.0.0.1:5000/img:1 "
                                   "(or container_image = docker://127.0.0.1:5000/img:1)")


def test_repository_and_tag_do_not_mistake_a_port_for_a_tag():
    assert imageref.repository_and_tag("127.0.0.1:5000/img:latest") == ("127.0.0.1:5000/img", "latest")
    assert imageref.registry_of("127.0.0.1:5000/img:1") == "127.0.0.1:5000"
    assert imageref.registry_of("team/img:1") is None


# ------------------------------------------------------------------ universe = container


def test_container_image_docker_url_maps_to_the_engine_reference():
    from condor_docker.core import imageref

    assert imageref.container_image_ref("docker://127.0.0.1:5000/a/b:1", "docker") == "127.0.0.1:5000/a/b:1"
    assert imageref.container_image_ref("docker://127.0.0.1:5000/a/b", "docker") == "127.0.0.1:5000/a/b:latest"


@pytest.mark.parametrize("image", ["x.sif", "/abs/x.sif", "sandbox", "oras://reg/x:1"])
def test_container_images_the_engine_cannot_run_are_holds(image):
    from condor_docker.core import imageref
    from condor_docker.core.failures import Code, Failure

    with pytest.raises(Failure) as caught:
        imageref.container_image_ref(image, "cedar")
    assert caught.value.code == Code.INVALID_IMAGE
    assert "docker://" in caught.value.reason
