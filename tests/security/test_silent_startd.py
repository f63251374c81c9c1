"""A silent startd never hands a job the whole machine (trust boundary round 2, item 7), through a live agent.

With CONDOR_DOCKER_SLOT_SOURCE = startd, the agent asks the local startd for the
slot's size.  When no startd answers (busy, restarting, or made unreachable), the
agent used to fall back to the machine-wide caps for 30 s, so a job launched in
that window got the whole machine whatever its slot was.  Now it uses the slot's
last known size for the same job, else sends the job back to idle (307, a
requeue: the launcher exits 75); these jobs were never sized, so both requeue.
"""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.root, pytest.mark.engine]


@pytest.fixture
def unreachable_startd(tmp_path, monkeypatch):
    """An HTCondor config (inherited by the agent and its fresh query process) where no startd answers."""
    config = tmp_path / "condor_config"
    config.write_text(f"STARTD_ADDRESS_FILE = {tmp_path}/no-such-startd-address\nCOLLECTOR_HOST = 127.0.0.1:1\n")
    monkeypatch.setenv("CONDOR_CONFIG", str(config))
    return str(config)


def test_no_startd_answer_requeues_the_job_never_the_machine_caps(unreachable_startd, agent_factory, make_scratch,
                                                                   start_launcher, real_job_ad, managed_containers):
    """Both jobs fit the admin's caps, which must not be their size: each is requeued and never starts."""
    agent = agent_factory(CONDOR_DOCKER_SLOT_SOURCE="startd", CONDOR_DOCKER_MAX_CPUS="2",
                          CONDOR_DOCKER_MAX_MEMORY_MB="4096")
    jobs = [start_launcher(agent, make_scratch(user, real_job_ad(Arguments="-c 'echo ran'")), user=user)
            for user in ("cdtest1", "cdtest2")]    # the second within NO_STARTD_RETRY: not asked again
    for job in jobs:
        assert job.wait(60) == 75, job.stderr()   # EX_TEMPFAIL: back to idle
        assert "no startd answered for slot slot1_1" in job.stderr(), job.stderr()
        assert "ran" not in job.stdout()
    log = agent.log_text()
    assert log.count("code=307") >= 2, agent.log_tail()
    assert "no startd answered for slot slot1_1" in log
    assert not managed_containers()
