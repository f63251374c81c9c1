"""GPUs on the real engine: the starter's assignment becomes exactly those devices in the container.

Needs an NVIDIA GPU and the NVIDIA container runtime on the engine; without them
the test skips and says which is missing (the mapping itself is unit tested in
tests/unit/core/test_gpus.py without a GPU).
"""
from __future__ import annotations

import classad2
import docker
import pytest
from enginetest import REGISTRY_IMAGE

from condor_docker.core import gpus, request, spec
from condor_docker.core.settings import default_settings
from condor_docker.engine.images import ensure_image
from condor_docker.engine.lifecycle import ContainerRun, JobIO, prepare_scratch


def gpu_runtime_missing() -> str | None:
    if not gpus.machine_gpus():
        return "no NVIDIA GPU on this machine (no /dev/nvidia0)"
    client = docker.APIClient(version="auto")
    try:
        runtimes = client.info().get("Runtimes") or {}
    finally:
        client.close()
    if "nvidia" not in runtimes:
        return f"the Docker engine has no nvidia runtime (runtimes: {', '.join(runtimes) or 'none'})"
    return None


MISSING = gpu_runtime_missing()
pytestmark = [pytest.mark.engine, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def test_assigned_gpu_is_the_only_device_and_cuda_sees_index_0(engine, scratch, job_user, tmp_path, no_leak):
    host_gpu = gpus.machine_gpus()[-1]          # the last GPU: inside it must still be device 0
    ad = classad2.ClassAd({"ClusterId": 43, "ProcId": 0, "Owner": "nobody", "DockerImage": REGISTRY_IMAGE,
                           "Cmd": "/bin/sh", "Arguments": "-c 'ls /dev; echo CUDA=$CUDA_VISIBLE_DEVICES'",
                           "TransferExecutable": False, "RequestMemory": 64, "RequestCpus": 1})
    machine = classad2.ClassAd({"Name": "slot1_1@testhost", "Machine": "testhost", "Cpus": 1, "Memory": 64})
    job = request.from_ads(ad, machine, uid=job_user[0], gid=job_user[1], scratch_dir=scratch,
                           starter_env=gpus.starter_environment((host_gpu,)))
    prepare_scratch(scratch, *job_user)
    container = spec.build_spec(job, default_settings(CONDOR_DOCKER_DEFAULT_NETWORK="none"))
    ensure_image(engine, REGISTRY_IMAGE, policy="missing", trust_local_images=False, pull_timeout=60, stall_timeout=10)
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        result = ContainerRun(engine, container, JobIO(o.fileno(), e.fileno(), None), kill_grace=2).run()
    text = out.read_text()
    assert result.exit_code == 0, err.read_text()
    devices = [name for name in text.split() if name.startswith("nvidia") and name[6:].isdigit()]
    assert len(devices) == 1 and "CUDA=0" in text
