"""A job cannot give itself GPUs (trust boundary round 2, item 2), attacked as a real user.

Before: in a 0-GPU slot, a job that deleted `GPUs = 0` from its .machine.ad and
wrote `AssignedGPUs = "all"` (or set `_CONDOR_AssignedGPUs=all` in the
launcher's environment) got a device request for every GPU, and no
NVIDIA_VISIBLE_DEVICES was set, so a host whose default runtime is nvidia gave
a 0-GPU job every GPU through its own environment.  Seen failing on the landed
code: the container's HostConfig.DeviceRequests held `{"Driver": "nvidia",
"DeviceIDs": ["all"]}` (the engine accepts the request even with no NVIDIA
runtime until start) and its Env had no NVIDIA_VISIBLE_DEVICES.
"""
from __future__ import annotations

import os
import re

import pytest
from sectest import FIXTURES

pytestmark = [pytest.mark.root, pytest.mark.engine]


def _kill_all(agent, managed_containers, *jobs):
    """The test's containers killed through the agent, its launchers waited for, nothing left."""
    for name in managed_containers():
        agent.call("signal", container=name, signal=9, grace=0)
    for job in jobs:
        job.wait(60)
    assert not managed_containers()


def test_a_job_that_rewrites_its_gpu_assignment_gets_no_gpu(agent, make_scratch, start_launcher, real_job_ad,
                                                            wait_until, managed_containers):
    with open(os.path.join(FIXTURES, "machine.ad")) as stream:
        machine = stream.read()
    forged = "\n".join(line for line in machine.splitlines() if not line.startswith(("GPUs ", "AssignedGPUs ")))
    forged += '\nAssignedGPUs = "all"\n'
    job_ad = real_job_ad(Arguments="-c 'sleep 30'", Environment="NVIDIA_VISIBLE_DEVICES=all")
    job = start_launcher(agent, make_scratch("cdtest1", job_ad, forged),
                         _CONDOR_AssignedGPUs="all", NVIDIA_VISIBLE_DEVICES="all", CUDA_VISIBLE_DEVICES="all")
    try:
        running = wait_until(lambda: managed_containers(), 60, "the job's container runs")
        attrs = next(iter(running.values()))
        assert not attrs["HostConfig"].get("DeviceRequests"), attrs["HostConfig"].get("DeviceRequests")
        env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == "void", env
    finally:
        _kill_all(agent, managed_containers, job)


def test_writing_another_owner_into_the_job_ad_does_not_get_their_volume(agent_factory, make_scratch, start_launcher,
                                                                        real_job_ad, wait_until, managed_containers,
                                                                        tmp_path):
    """Trust round 2, item 3: `_MOUNT_IF = Owner == "cdtest2"` read the job-writable .job.ad.

    Before: cdtest1's job with `Owner = "cdtest2"` in its .job.ad got cdtest2's volume
    mounted (seen: the container's Mounts held the volume's source).  Now Owner
    comes from the caller's uid.
    """
    private = tmp_path / "cdtest2-data"
    private.mkdir()
    agent = agent_factory(DOCKER_VOLUMES="THEIRS", DOCKER_VOLUME_DIR_THEIRS=f"{private}:/theirs:ro",
                          DOCKER_MOUNT_VOLUMES="THEIRS", DOCKER_VOLUME_DIR_THEIRS_MOUNT_IF='Owner == "cdtest2"')
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 30'", Owner="cdtest2")))
    try:
        running = wait_until(lambda: managed_containers(), 60, "the job's container runs")
        mounts = [m.get("Source") for m in next(iter(running.values()))["Mounts"]]
        assert str(private) not in mounts, mounts
    finally:
        _kill_all(agent, managed_containers, job)


def test_one_scratch_dir_runs_one_container_whatever_its_job_ad_says(agent, make_scratch, start_launcher,
                                                                    real_job_ad, wait_until, managed_containers):
    """Trust round 2, item 4: the name came from ClusterId/ProcId in the job-writable .job.ad.

    Before: a job that rewrote ClusterId between launches from its one scratch dir
    got a second (and third ...) slot-sized container (seen: two running
    containers with the same scratch_dir label).  Now the second launch is refused.
    """
    job_ad = real_job_ad(Arguments="-c 'sleep 30'")
    cluster = re.search(r"^ClusterId = (\d+)$", job_ad, re.M).group(1)
    scratch = make_scratch("cdtest1", job_ad)
    first = start_launcher(agent, scratch)
    try:
        wait_until(lambda: managed_containers(), 60, "the first container runs")
        with open(os.path.join(scratch, ".job.ad")) as stream:
            text = stream.read()
        rewritten = text.replace(f"ClusterId = {cluster}", f"ClusterId = {int(cluster) + 500000}")
        assert rewritten != text
        with open(os.path.join(scratch, ".job.ad"), "w") as stream:
            stream.write(rewritten)
        second = start_launcher(agent, scratch)
        assert second.wait(60) != 0
        assert "one container per job" in second.stderr(), second.stderr()
        assert len(managed_containers()) == 1
    finally:
        _kill_all(agent, managed_containers, first)
