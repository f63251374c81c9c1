"""GPU assignment -> device requests and the environment inside (no GPU needed)."""
from __future__ import annotations

import dataclasses
import os

from testpaths import FIXTURES

from condor_docker.core import ads, gpus, request, settings, spec


def real_request(starter_env, machine_extra=""):
    job_ad = ads.parse_ad(open(os.path.join(FIXTURES, "job.ad")).read(), "job ad")
    machine_ad = ads.parse_ad(open(os.path.join(FIXTURES, "machine.ad")).read().rstrip("\n") + "\n" + machine_extra, "machine ad")
    return request.from_ads(job_ad, machine_ad, uid=1000, gid=1000, scratch_dir="/var/lib/condor/execute/dir_1",
                            starter_env=starter_env)


def test_starter_assignment_becomes_a_device_request_for_exactly_those_gpus():
    req = real_request({"_CONDOR_AssignedGPUs": "GPU-2cd41b6b,GPU-9f3a0c11", "CUDA_VISIBLE_DEVICES": "GPU-2cd41b6b,GPU-9f3a0c11"},
                       "GPUs = 2\n")
    container = spec.build_spec(req, settings.default_settings())
    assert container.device_requests == (gpus.DeviceRequest("nvidia", ("GPU-2cd41b6b", "GPU-9f3a0c11")),)
    env = dict(container.environment)
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-2cd41b6b,GPU-9f3a0c11"


def test_host_indices_are_renumbered_inside():
    container = spec.build_spec(real_request({"_CONDOR_AssignedGPUs": "1,3", "CUDA_VISIBLE_DEVICES": "1,3"}, "GPUs = 2\n"),
                                settings.default_settings())
    assert container.device_requests[0].device_ids == ("1", "3")
    env = dict(container.environment)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["_CONDOR_AssignedGPUs"] == "1,3"


def test_slot_ad_assignment_is_used_when_the_env_has_none():
    req = real_request({}, 'AssignedGPUs = "GPU-aaaa0001"\nGPUs = 1\n')
    assert req.gpus == ("GPU-aaaa0001",)


def test_a_real_starters_no_gpu_sentinel_is_not_a_gpu():
    """The real pool's launcher env says _CONDOR_AssignedGPUs=10000 for a slot with GPUs = 0."""
    env = dict(line.split("=", 1) for line in open(os.path.join(FIXTURES, "launcher-environment.txt")).read().splitlines())
    assert env["_CONDOR_AssignedGPUs"] == "10000"
    container = spec.build_spec(real_request(env), settings.default_settings())
    assert container.device_requests == ()
    assert dict(container.environment)["CUDA_VISIBLE_DEVICES"] == "10000"   # still hides every GPU


def test_no_gpus_no_request_and_the_nvidia_runtime_told_none():
    """NVIDIA_VISIBLE_DEVICES=void even when the job's environment or the image says all (trust round 2, 2)."""
    request = dataclasses.replace(real_request({"NVIDIA_VISIBLE_DEVICES": "all"}),
                                  environment=(("NVIDIA_VISIBLE_DEVICES", "all"),))
    container = spec.build_spec(request, settings.default_settings())
    env = dict(container.environment)
    assert container.device_requests == () and "CUDA_VISIBLE_DEVICES" not in env
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_assigned_gpus_are_what_the_nvidia_runtime_sees():
    env = gpus.container_environment(("GPU-aaaa", "GPU-bbbb"))
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb" and env["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"


def test_cdi_names_go_to_the_cdi_driver():
    assert gpus.device_requests(("nvidia.com/gpu=0",)) == (gpus.DeviceRequest("cdi", ("nvidia.com/gpu=0",), ()),)


def test_machine_gpus_from_dev(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).write_text("")
    assert gpus.machine_gpus(str(tmp_path)) == ("0", "1")
    assert gpus.machine_gpus(str(tmp_path / "absent")) == ()


def test_container_service_names_is_held_not_ignored_on_the_ep():
    import pytest

    from condor_docker.core.failures import Code, Failure
    job_ad = ads.parse_ad(open(os.path.join(FIXTURES, "job.ad")).read().rstrip("\n") + "\nContainerServiceNames = \"web\"\n", "job")
    machine_ad = ads.parse_ad(open(os.path.join(FIXTURES, "machine.ad")).read(), "machine")
    with pytest.raises(Failure) as caught:
        request.from_ads(job_ad, machine_ad, uid=1000, gid=1000, scratch_dir="/x")
    assert caught.value.code is Code.BAD_JOB_AD and caught.value.reason.startswith("container_service_names:")
