"""One user's job can never make another's fail: names carry the uid, limits come from a trusted source."""
from __future__ import annotations

import os
import subprocess

import pytest
from sectest import ATTACKER, CODE_PATH, FIXTURES, PYTHON

pytestmark = [pytest.mark.root, pytest.mark.engine]


def test_a_job_claiming_another_users_job_id_does_not_block_it(agent, attack, run_as, make_scratch, wait_until,
                                                               managed_containers, test_users):
    victim_scratch = make_scratch("cdtest1")
    cluster = 424242
    squatter = run_as("cdtest2", [PYTHON, "-c", ATTACKER, "launch-as", agent.socket, make_scratch("cdtest2"),
                                  str(cluster), "0", "slot1_1", "sleep 60"],
                      env={"PYTHONPATH": CODE_PATH}, cwd="/", stdin=subprocess.DEVNULL,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        squatting = wait_until(lambda: [j for j in agent.call("status")["jobs"]
                                        if j["job"] == f"{cluster}.0" and j["container_id"]], 60, "the squatter runs")
        result = attack("cdtest1", agent, "launch-as", victim_scratch, cluster, 0, "slot1_1", "echo mine")
        assert result["reply"]["ok"] is True, result     # not "already being served"
        assert squatting[0]["container"].endswith(f"_u{test_users['cdtest2'][0]}")
        assert result["reply"]["result"]["exit_code"] == 0
        assert result["container"] == f"HTCJob_{cluster}_0_slot1_1_u{test_users['cdtest1'][0]}"
        with open(os.path.join(victim_scratch, "out")) as stream:
            assert stream.read() == "mine\n"
    finally:
        agent.call("signal", container=squatting[0]["container"], signal=9, grace=0)
        squatter.communicate(timeout=60)
    assert not managed_containers()


def test_a_rewritten_machine_ad_is_held_and_takes_nothing(agent_factory, make_scratch, start_launcher, real_job_ad,
                                                          managed_containers):
    agent = agent_factory(CONDOR_DOCKER_MAX_MEMORY_MB="512", CONDOR_DOCKER_MAX_CPUS="1")
    with open(os.path.join(FIXTURES, "machine.ad")) as stream:
        machine = stream.read()
    lying = machine.replace("\nMemory = 128\n", "\nMemory = 1000000000\n")
    assert lying != machine
    job = start_launcher(agent, make_scratch("cdtest1", machine_ad_text=lying))
    assert job.wait(60) == 1                       # held: EX_HOLD with the reason on stderr
    assert "claims Memory = 1000000000 MB" in job.stderr() and "512 MB" in job.stderr(), job.stderr()
    assert "result=failed code=16" in agent.log_text()
    # the next user's job is not refused for lack of memory
    honest = start_launcher(agent, make_scratch("cdtest2", real_job_ad(Arguments="-c 'echo fine'")), user="cdtest2")
    assert honest.wait(60) == 0, honest.stderr()
    assert honest.stdout() == "fine\n"
    assert not managed_containers()
