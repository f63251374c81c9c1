"""Image references and the classification of recorded engine texts."""
from __future__ import annotations

import pytest

from condor_docker.core import imageref
from condor_docker.core.failures import Code, Failure, Kind
from condor_docker.engine.client import classify_engine_text


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


def test_repository_and_tag_do_not_mistake_a_port_for_a_tag():
    assert imageref.repository_and_tag("127.0.0.1:5000/img:latest") == ("127.0.0.1:5000/img", "latest")
    assert imageref.registry_of("127.0.0.1:5000/img:1") == "127.0.0.1:5000"
    assert imageref.registry_of("team/img:1") is None


# Texts recorded from Docker 20.10 (our test engine) and registries.
@pytest.mark.parametrize("text,status,during,code", [
    ("manifest for 127.0.0.1:5000/x:1 not found: manifest unknown: manifest unknown", 404, "pull", Code.IMAGE_NOT_FOUND),
    ("Get \"http://127.0.0.1:5001/v2/\": dial tcp 127.0.0.1:5001: connect: connection refused", 500, "pull",
     Code.REGISTRY_UNREACHABLE),
    ("pull access denied for x, repository does not exist or may require 'docker login': denied: requested "
     "access to the resource is denied", 404, "pull", Code.IMAGE_ACCESS_DENIED),
    ("unauthorized: authentication required", 500, "pull", Code.IMAGE_ACCESS_DENIED),
    ("invalid reference format", 400, "pull", Code.INVALID_IMAGE),
    ("Get \"https://reg/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded "
     "while awaiting headers)", 500, "pull", Code.PULL_TIMEOUT),
    ("received unexpected HTTP status: 503 Service Unavailable", 500, "pull", Code.REGISTRY_UNREACHABLE),
    ("OCI runtime create failed: runc create failed: unable to start container process: exec: \"./x\": "
     "stat ./x: no such file or directory: unknown", 400, "start", Code.EXECUTABLE_NOT_FOUND),
    ("invalid mount config for type \"bind\": bind source path does not exist: /nope", 400, "create",
     Code.CONTAINER_REFUSED),
    ("Conflict. The container name \"/HTCJob_1_0_slot1\" is already in use", 409, "create", Code.CONTAINER_REFUSED),
    ("driver failed programming external connectivity", 500, "start", Code.ENGINE_ERROR),
])
def test_classification(text, status, during, code):
    assert classify_engine_text(text, status, during) is code


def test_failure_keeps_kind_when_wrapped_and_is_one_line():
    failure = Failure(Code.REGISTRY_UNREACHABLE, "line one\nline   two")
    assert failure.reason == "line one line two"
    wrapped = failure.with_context("job 1.0")
    assert wrapped.kind is Kind.REQUEUE and wrapped.reason == "job 1.0: line one line two"
    assert Failure.from_dict(wrapped.to_dict()).code is Code.REGISTRY_UNREACHABLE


def test_hold_codes_fit_htcondors_hook_status_ranges():
    for code in Code:
        assert (1 <= code.value <= 299) == (code.kind is Kind.HOLD)
        assert (code.value >= 300) == (code.kind is Kind.REQUEUE)


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
