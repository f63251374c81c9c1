"""Malformed requests get a precise refusal, and no fd a client passes is ever leaked (as a real user)."""
from __future__ import annotations

import subprocess
import time

import pytest
from sectest import CODE_PATH, PYTHON, agent_fds

pytestmark = [pytest.mark.root, pytest.mark.engine]


def test_malformed_requests_get_a_clean_refusal(agent, attack, make_scratch):
    scratch = make_scratch("cdtest1")
    replies = attack("cdtest1", agent, "malformed", scratch)
    for name, reply in replies.items():
        assert reply and reply.get("ok") is False, (name, reply)
        assert reply["failure"]["code"] in (10, 16), (name, reply)   # a hold, never a requeue
    assert "out of range" in replies["huge-float"]["failure"]["reason"]
    assert "nested too deeply" in replies["deep-nesting"]["failure"]["reason"]
    assert "not under the execute dirs" in replies["proc-scratch"]["failure"]["reason"]
    assert replies["list-for-mapping"]["failure"]["code"] == 16
    assert "the field 'container' is missing" in replies["missing-field"]["failure"]["reason"]
    unterminated = replies["unterminated-ad"]["failure"]
    assert unterminated["code"] == 10 and "DockerImage on line 2" in unterminated["reason"]
    log = agent.log_text()
    assert "Traceback" not in log and "failed unexpectedly" not in log
    assert agent.call("ping")["ok"] and agent.process.poll() is None


def test_an_unterminated_string_on_stdin_is_a_hold_not_a_vanished_job(agent, run_as, make_scratch, real_job_ad):
    scratch = make_scratch("cdtest1")
    text = real_job_ad() + 'Environment = "A=1 B=2\n'   # cut in the middle of a string
    hook = run_as("cdtest1", [PYTHON, "-m", "condor_docker.cli", "prepare-job", "--socket", agent.socket],
                  env={"PYTHONPATH": CODE_PATH, "PATH": "/usr/bin:/bin", "_CONDOR_SLOT": "slot1_1"}, cwd=scratch,
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = hook.communicate(text, timeout=60)
    assert hook.returncode != 0, (out, err)
    assert "HookStatusCode = 10" in out and "Environment" in out, (out, err)


def test_fds_sent_with_bad_messages_are_closed(agent, attack):
    agent.call("ping")
    before = agent_fds(agent)
    result = attack("cdtest2", agent, "fd-flood", 400)
    assert result["sent"] >= 390
    time.sleep(1.0)   # the last connection threads finish
    after = agent_fds(agent)
    assert after <= before + 8, f"the agent held {before} fds before the flood and {after} after"
    assert agent.call("ping")["ok"]
    assert "Traceback" not in agent.log_text()


def test_fds_of_a_cut_request_are_closed_after_the_deadline(agent_factory, attack):
    agent = agent_factory(CONDOR_DOCKER_REQUEST_TIMEOUT="2")
    before = agent_fds(agent)
    result = attack("cdtest1", agent, "slowloris", 20, 5)
    assert result["closed_by_agent"] == result["opened"] == 20, result
    time.sleep(0.5)
    assert agent_fds(agent) <= before + 8
