"""The classification of recorded engine texts into failure codes."""
from __future__ import annotations

import pytest

from condor_docker.core.failures import Code
from condor_docker.engine.client import classify_engine_text


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
