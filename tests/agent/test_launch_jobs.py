"""The launcher and the agent on the real engine, with a real job user (cdtest1)."""
from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.engine]


def container_of(agent, wait_until, job_id_prefix="HTCJob_"):
    def find():
        jobs = agent.call("status")["jobs"]
        running = [j for j in jobs if j["container_id"]]
        return running[0] if running else None
    return wait_until(find, 60, "the job's container exists")


def test_hello_goes_to_the_jobs_stdout(agent, make_scratch, start_launcher, real_job_ad):
    scratch = make_scratch("cdtest1", real_job_ad(Arguments="-c 'echo hello; echo oops >&2'"))
    job = start_launcher(agent, scratch)
    assert job.wait() == 0, job.stderr()
    assert job.stdout() == "hello\n"
    assert job.stderr() == "oops\n"
    assert "op=launch uid=" in agent.log_text()


def test_exit_code_is_the_jobs(agent, make_scratch, start_launcher, real_job_ad):
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'exit 3'")))
    assert job.wait() == 3
    log_line = [l for l in agent.log_text().splitlines() if "op=launch" in l][-1]
    assert "result=ok exit=exited_with_code_3" in log_line
    assert "container=HTCJob_" in log_line and "job=" in log_line


def test_condor_rm_stops_the_container_within_grace(agent, make_scratch, start_launcher, real_job_ad,
                                                    managed_containers, wait_until):
    # The shell ignores SIGTERM, so the hard kill after JobMaxVacateTime (2 s) ends it.
    ad = real_job_ad(Arguments="-c 'trap \"\" TERM; sleep 300 & wait; sleep 300'", JobMaxVacateTime=2)
    job = start_launcher(agent, make_scratch("cdtest1", ad))
    name = container_of(agent, wait_until)["container"]
    time.sleep(0.5)
    started = time.monotonic()
    job.process.send_signal(signal.SIGTERM)
    status = job.wait(30)
    elapsed = time.monotonic() - started
    assert status == -signal.SIGKILL, job.stderr()   # killed after the grace: ExitBySignal, signal 9
    assert 1.5 <= elapsed < 10
    assert name not in managed_containers()


def test_sigterm_honoured_by_the_job_reports_sigterm(agent, make_scratch, start_launcher, real_job_ad,
                                                     managed_containers, wait_until):
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 300'")))
    name = container_of(agent, wait_until)["container"]
    time.sleep(0.5)
    job.process.send_signal(signal.SIGTERM)
    assert job.wait(30) == -signal.SIGTERM   # --init forwards SIGTERM; sleep dies of it
    assert name not in managed_containers()


def test_launcher_kill9_removes_the_container(agent, make_scratch, start_launcher, real_job_ad,
                                              managed_containers, wait_until):
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 300'")))
    name = container_of(agent, wait_until)["container"]
    job.process.kill()
    job.wait(10)
    wait_until(lambda: name not in managed_containers(), 10, f"{name} removed after the launcher died")
    wait_until(lambda: not agent.call("status")["jobs"], 10, "the agent no longer tracks the job")
    assert "went away: killing the container" in agent.log_text()


def test_oom_exits_137_with_a_line_and_chirp_attributes(agent, make_scratch, start_launcher, real_job_ad,
                                                       fake_chirp, test_users):
    scratch = make_scratch("cdtest1", real_job_ad(Arguments="-c 'head -c 600m /dev/zero | tail'"))
    fake_chirp.write_config(scratch, *test_users["cdtest1"])
    job = start_launcher(agent, scratch)
    assert job.wait(120) == 137, job.stderr()
    lines = [l for l in job.stderr().splitlines() if l.startswith("condor_docker:")]
    assert lines == ["condor_docker: Docker job has gone over memory limit of 128 Mb"]
    hold = {k: v for k, v in fake_chirp.attributes.items() if k.startswith(("ChirpCondorDockerHold", "ChirpCondorDockerOOM"))}
    assert hold == {
        "ChirpCondorDockerHoldReason": '"Docker job has gone over memory limit of 128 Mb"',
        "ChirpCondorDockerHoldSubCode": "102",
        "ChirpCondorDockerOOM": "true",
    }
    # what the container used, beside HTCondor's own figures (docs/USAGE-ACCOUNTING.md)
    assert int(fake_chirp.attributes["ChirpCondorDockerMemoryUsage"]) >= 120, fake_chirp.attributes
    assert float(fake_chirp.attributes["ChirpCondorDockerRemoteSysCpu"]) > 0, fake_chirp.attributes


def test_agent_restart_mid_job_reattaches_and_returns_the_exit_code(agent, make_scratch, start_launcher,
                                                                      real_job_ad, managed_containers,
                                                                      wait_until):
    ad = real_job_ad(Arguments="-c 'echo before; sleep 6; echo after; exit 7'")
    job = start_launcher(agent, make_scratch("cdtest1", ad))
    name = container_of(agent, wait_until)["container"]
    wait_until(lambda: "before" in job.stdout(), 20, "the job wrote its first line")
    agent.kill9()
    assert name in managed_containers()     # the container survives the agent
    agent.start()
    assert job.wait(90) == 7, job.stderr()
    assert "after" in job.stdout()           # written after the reattach
    assert "reattaching" in job.stderr()
    assert name not in managed_containers()
    assert "op=reattach uid=" in agent.log_text()


def test_agent_sigterm_leaves_the_job_running(agent, make_scratch, start_launcher, real_job_ad,
                                              managed_containers, wait_until):
    ad = real_job_ad(Arguments="-c 'sleep 4; exit 5'")
    job = start_launcher(agent, make_scratch("cdtest1", ad))
    name = container_of(agent, wait_until)["container"]
    agent.stop()                            # SIGTERM: stop accepting, leave jobs alone
    assert not os.path.exists(agent.socket)
    assert managed_containers()[name]["State"]["Running"]
    agent.start()
    assert job.wait(90) == 5, job.stderr()
    assert name not in managed_containers()


def test_agent_unavailable_at_start(make_scratch, start_launcher, execute_dir):
    class NoAgent:
        socket = "/run/condor_docker-test-none/agent.sock"
    job = start_launcher(NoAgent(), make_scratch("cdtest1"))
    assert job.wait(30) == 75
    assert "condor_docker: the condor_docker agent does not answer" in job.stderr()


def test_bad_image_is_a_hold_exit_1(agent, make_scratch, start_launcher, real_job_ad, fake_chirp, test_users):
    scratch = make_scratch("cdtest1", real_job_ad(DockerImage="127.0.0.1:5000/condor-docker-test/nosuch:1"))
    fake_chirp.write_config(scratch, *test_users["cdtest1"])
    job = start_launcher(agent, scratch)
    assert job.wait(60) == 1
    assert "Cannot pull image 127.0.0.1:5000/condor-docker-test/nosuch:1" in job.stderr()
    assert fake_chirp.attributes["ChirpCondorDockerHoldSubCode"] == "12"
    assert fake_chirp.attributes["ChirpCondorDockerOOM"] == "false"
