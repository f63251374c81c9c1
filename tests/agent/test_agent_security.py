"""Refusals with two real uids: the agent authorizes by SO_PEERCRED and container labels."""
from __future__ import annotations

import json
import os
import pwd
import subprocess

import pytest
from testpaths import CODE_PATH

pytestmark = [pytest.mark.root, pytest.mark.engine]

PYTHON = "/opt/condor_docker/venv/bin/python"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLICY_REFUSED = 16


def call_as(run_as, user, agent, op, **fields) -> dict:
    """One protocol call made by a process running as `user` (so SO_PEERCRED says that uid)."""
    code = ("import json, sys; from condor_docker.wire.protocol import AgentClient; "
            "print(json.dumps(AgentClient(sys.argv[1]).call(sys.argv[2], **json.loads(sys.argv[3]))))")
    process = run_as(user, [PYTHON, "-c", code, agent.socket, op, json.dumps(fields)],
                     env={"PYTHONPATH": CODE_PATH}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out)


def refused(reply: dict) -> bool:
    return reply.get("ok") is False and reply["failure"]["code"] == POLICY_REFUSED


@pytest.fixture
def running_job(agent, make_scratch, start_launcher, real_job_ad, wait_until):
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 300'")))
    found = wait_until(lambda: [j for j in agent.call("status")["jobs"] if j["container_id"]], 60,
                       "the job's container exists")
    yield found[0]
    job.process.terminate()
    job.wait(30)


def test_another_user_cannot_touch_the_container(agent, running_job, run_as, managed_containers, start_launcher,
                                                 make_scratch, real_job_ad):
    name = running_job["container"]
    label = running_job["job"].split(".")
    assert refused(call_as(run_as, "cdtest2", agent, "signal", container=name, signal=9, grace=None))
    assert refused(call_as(run_as, "cdtest2", agent, "suspend", container=name))
    assert refused(call_as(run_as, "cdtest2", agent, "cleanup", cluster=int(label[0]), proc=int(label[1]),
                           slot="slot1_1"))
    assert call_as(run_as, "cdtest2", agent, "status")["jobs"] == []
    assert managed_containers()[name]["State"]["Running"]
    # reattach needs fds: a launcher as cdtest2 in its own scratch dir, reattaching to cdtest1's container
    code = ("import json, sys; from condor_docker.wire.protocol import AgentClient; "
            "print(json.dumps(list(AgentClient(sys.argv[1]).stream('reattach', fds=[0, 1, 2], "
            "container=sys.argv[2]))[-1]))")
    process = run_as("cdtest2", [PYTHON, "-c", code, agent.socket, name], env={"PYTHONPATH": CODE_PATH},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd="/")
    out, err = process.communicate(timeout=60)
    assert refused(json.loads(out.splitlines()[-1])), err
    # the uid the kernel reports for cdtest2, whatever this machine gave it (not always 1002)
    other_uid = pwd.getpwnam("cdtest2").pw_uid
    assert f"op=signal uid={other_uid}" in agent.log_text() and "result=failed code=16" in agent.log_text()


def test_owner_and_root_may_signal(agent, running_job, run_as, managed_containers, wait_until):
    name = running_job["container"]
    assert call_as(run_as, "cdtest1", agent, "suspend", container=name)["ok"]
    assert managed_containers()[name]["State"]["Paused"]
    assert agent.call("resume", container=name)["ok"]          # root may act on any
    assert not managed_containers()[name]["State"]["Paused"]


def test_scratch_dir_of_another_user_is_refused(agent, make_scratch, start_launcher):
    job = start_launcher(agent, make_scratch("cdtest2"), user="cdtest1")
    assert job.wait(30) == 1
    assert "is owned by uid" in job.stderr()


def test_scratch_dir_outside_execute_dirs_is_refused(agent, test_users, run_as, start_launcher, tmp_path,
                                                     make_scratch):
    outside = "/var/lib/condor_docker-test/outside-" + os.path.basename(str(tmp_path))
    os.makedirs(outside, 0o700)
    try:
        source = make_scratch("cdtest1")
        for name in (".job.ad", ".machine.ad"):
            with open(os.path.join(source, name)) as src, open(os.path.join(outside, name), "w") as dst:
                dst.write(src.read())
        os.chown(outside, *test_users["cdtest1"])
        job = start_launcher(agent, outside)
        assert job.wait(30) == 1
        assert "is not under the execute dirs" in job.stderr()
    finally:
        subprocess.run(["rm", "-rf", outside], check=False)


def test_scratch_dir_through_a_symlink_is_refused(agent, make_scratch, start_launcher, execute_dir):
    real = make_scratch("cdtest1")
    link = real + "-link"
    os.symlink(real, link)
    try:
        job = start_launcher(agent, real, _CONDOR_SCRATCH_DIR=link)
        assert job.wait(30) == 1
        assert "symbolic link" in job.stderr()
    finally:
        os.unlink(link)


def test_symlinked_job_ad_is_refused(agent, make_scratch, start_launcher):
    scratch = make_scratch("cdtest1")
    os.unlink(os.path.join(scratch, ".job.ad"))
    os.symlink("/etc/shadow", os.path.join(scratch, ".job.ad"))
    job = start_launcher(agent, scratch)
    assert job.wait(30) == 1
    # the launcher (as the job's user) refuses it first now; the agent's own check is the same rule
    # (host/fdio.py) and is attacked directly in tests/unit/agent/test_policy.py and tests/security
    assert "must be a plain file, not a symlink" in job.stderr() or "cannot be read safely" in job.stderr()
    assert "root:" not in job.stderr()


def test_root_cannot_run_a_job(agent, make_scratch, real_job_ad):
    scratch = make_scratch("cdtest1")
    reply = agent.call("prepare", job_ad=real_job_ad(), scratch_dir=scratch)
    assert refused(reply) and "root may only manage" in reply["failure"]["reason"]


def test_prepare_as_the_user_pulls_the_image(agent, make_scratch, real_job_ad, run_as):
    scratch = make_scratch("cdtest1")
    reply = call_as(run_as, "cdtest1", agent, "prepare", job_ad=real_job_ad(), scratch_dir=scratch)
    assert reply == {"ok": True, "image": "127.0.0.1:5000/condor-docker-test/busybox:1"}


def test_prepare_requeue_becomes_hold_after_too_many_starts(agent, make_scratch, real_job_ad, run_as):
    ad = real_job_ad(DockerImage="127.0.0.1:1/condor-docker-test/busybox:1", NumJobStarts=9)
    reply = call_as(run_as, "cdtest1", agent, "prepare", job_ad=ad, scratch_dir=make_scratch("cdtest1"))
    assert reply["ok"] is False and reply["failure"]["code"] == 19, reply
    assert "Cannot pull image 127.0.0.1:1/" in reply["failure"]["reason"]


def test_host_network_refused_when_not_allowed(agent_factory, make_scratch, real_job_ad, run_as):
    agent = agent_factory(CONDOR_DOCKER_ALLOW_HOST_NETWORK="false")
    scratch = make_scratch("cdtest1", real_job_ad(DockerNetworkType="host"))
    reply = call_as(run_as, "cdtest1", agent, "prepare", job_ad=real_job_ad(DockerNetworkType="host"),
                    scratch_dir=scratch)
    assert reply["ok"] is False and reply["failure"]["code"] == 15, reply


def test_capabilities_are_only_the_admins(agent_factory, make_scratch, start_launcher, real_job_ad,
                                          managed_containers, wait_until):
    agent = agent_factory(CONDOR_DOCKER_ADD_CAPABILITIES="SYS_PTRACE")
    # a job ad cannot ask for capabilities: an attribute that looks like it is ignored
    ad = real_job_ad(Arguments="-c 'sleep 300'", DockerCapAdd="SYS_ADMIN", DockerPrivileged=True)
    job = start_launcher(agent, make_scratch("cdtest1", ad))
    name = wait_until(lambda: [j for j in agent.call("status")["jobs"] if j["container_id"]], 60, "started")[0][
        "container"]
    host_config = managed_containers()[name]["HostConfig"]
    assert host_config["CapAdd"] == ["SYS_PTRACE"]
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["Privileged"] is False
    assert "no-new-privileges" in host_config["SecurityOpt"]
    job.process.terminate()
    job.wait(30)
