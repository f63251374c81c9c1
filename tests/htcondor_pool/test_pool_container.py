"""universe = container on a real pool: docker:// images run through condor_docker; .sif is held clearly."""
from __future__ import annotations

import pwd

import pytest
from poolfixture import REGISTRY_IMAGE


def container_submit(image: str, body: str) -> str:
    return (f"universe = container\ncontainer_image = {image}\n{body.strip()}\n"
            "transfer_executable = false\nshould_transfer_files = YES\n"
            "output = out.txt\nerror = err.txt\nlog = job.log\nrequest_memory = 64M\nqueue\n")


def test_slots_advertise_what_container_jobs_require(pool):
    """condor_submit gives docker:// jobs Requirements with TARGET.HasContainer && TARGET.HasDockerURL."""
    slot = pool.slot_ad()
    assert slot.eval("HasContainer") is True
    assert slot.eval("HasDockerURL") is True


def test_docker_url_container_job_runs(pool, pool_job_user):
    job = pool.submit(container_submit(f"docker://{REGISTRY_IMAGE}", """
executable = /bin/sh
arguments = "-c 'echo container as $(id -u); exit 3'"
"""), user=pool_job_user)
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 3
    with open(f"{job.dir}/out.txt") as stream:
        assert stream.read() == f"container as {pwd.getpwnam(pool_job_user).pw_uid}\n"
    assert f"op=launch uid={pwd.getpwnam(pool_job_user).pw_uid} " in pool.agent_log()


@pytest.fixture
def slot_claims_sif(pool):
    """A slot that advertises HasSIF (as a machine whose admin or HTCondor says so), so .sif jobs match it."""
    pool.write_config("95-test-has-sif.conf", "HasSIF = true\nSTARTD_ATTRS = $(STARTD_ATTRS) HasSIF\n")
    pool.reconfig(settle=0)
    pool.wait_for(lambda: pool.slot_ad().get("HasSIF") is True, 60, "HasSIF in the slot ad")
    yield
    pool.remove_config("95-test-has-sif.conf")
    pool.reconfig(settle=0)
    pool.wait_for(lambda: pool.slot_ad().get("HasSIF") is None, 60, "HasSIF gone from the slot ad")


def test_sif_container_job_is_held_clearly(pool, pool_job_user, slot_claims_sif):
    job = pool.submit(container_submit("image.sif", "executable = /bin/true"), user=pool_job_user,
                      files={"image.sif": b"a .sif stands here"})
    try:
        ad = pool.wait(job, "held", timeout=120)
        assert (ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")) == (19, 11), pool.explain(job, "held")
        reason = ad.get("HoldReason")
        assert "'image.sif' is a Singularity/Apptainer image file (.sif)" in reason
        assert "docker://" in reason
    finally:
        pool.rm(job)
