"""JOB_EXIT's cleanup_starter_job with real condor_starter ancestors: the kernel, not the ad, picks the job.

The emulated starter (starter.py) is the test process and proves nothing, so here
each job's starter is a separate root process that the kernel names
`condor_starter` (prctl PR_SET_NAME), started with `-a slot1_1` as the real one
is, whose pid names the job's scratch dir (dir_<pid>): agent/starter_proof.py
believes exactly that.  It starts the launcher and the hook as the job's user, so
they descend from it as they do from the real starter.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from testpaths import CODE_PATH, FIXTURES

pytestmark = [pytest.mark.root, pytest.mark.engine]

PYTHON = "/opt/condor_docker/venv/bin/python"
STARTER_LABEL = "org.condor_docker.starter_pid"
JOB_EXIT = "import sys; from condor_docker.starter.job_exit import job_exit_entry; sys.exit(job_exit_entry())"
STARTER = r'''
import ctypes, json, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(15, b"condor_starter", 0, 0, 0)   # PR_SET_NAME: /proc/<pid>/comm, what psutil names
children = {}
for line in sys.stdin:
    ask = json.loads(line)
    if "wait" in ask:
        child = children.pop(ask["wait"])
        out, err = child.communicate(timeout=ask["timeout"])
        answer = {"rc": child.returncode, "stderr": err or ""}
    elif "kill" in ask:
        child = children.pop(ask["kill"])
        child.kill()
        child.communicate(timeout=30)
        answer = {"rc": child.returncode}
    else:
        files = {name: open(ask[name], "ab") for name in ("stdout", "stderr") if ask.get(name)}
        child = subprocess.Popen(ask["argv"], cwd=ask["cwd"], env=ask["env"], user=ask["uid"], group=ask["gid"],
                                 extra_groups=[], text=True, stdin=subprocess.PIPE,
                                 stdout=files.get("stdout", subprocess.PIPE), stderr=files.get("stderr", subprocess.PIPE))
        for stream in files.values():
            stream.close()
        child.stdin.write(ask.get("input", ""))
        child.stdin.close()
        child.stdin = None
        children[child.pid] = child
        answer = {"pid": child.pid}
    print(json.dumps(answer), flush=True)
'''


class FakeStarter:
    """A root process named condor_starter that starts, waits for and kills its children on request."""

    def __init__(self, execute_dir: str, test_users: dict[str, tuple[int, int]]) -> None:
        self.process = subprocess.Popen([PYTHON, "-c", STARTER, "-a", "slot1_1"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.users = test_users
        self.scratch = os.path.join(execute_dir, f"dir_{self.pid}")   # the starter's EXECUTE/dir_<pid>
        self.children: list[int] = []

    def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def start(self, user: str, argv: list[str], env: dict[str, str], cwd: str, **streams: str) -> int:
        uid, gid = self.users[user]
        pid = self.ask(argv=argv, env=env, cwd=cwd, uid=uid, gid=gid, **streams)["pid"]
        self.children.append(pid)
        return pid

    def wait(self, pid: int, timeout: float = 120) -> dict:
        self.children.remove(pid)
        return self.ask(wait=pid, timeout=timeout)

    def make_scratch(self, user: str, job_ad: str) -> str:
        """dir_<pid>, the user's, 0700, with .job.ad and the real pool's .machine.ad."""
        uid, gid = self.users[user]
        os.mkdir(self.scratch, 0o700)
        with open(os.path.join(FIXTURES, "machine.ad")) as stream:
            machine_ad = stream.read()
        for name, text in ((".job.ad", job_ad), (".machine.ad", machine_ad)):
            path = os.path.join(self.scratch, name)
            with open(path, "w") as stream:
                stream.write(text)
            os.chown(path, uid, gid)
        os.chown(self.scratch, uid, gid)
        return self.scratch

    def launch(self, agent, user: str, launcher_env) -> int:
        """`condor_docker launch` as the job process, its stdout/stderr files in the scratch dir."""
        uid, gid = self.users[user]
        paths = {}
        for stream in ("stdout", "stderr"):
            paths[stream] = os.path.join(self.scratch, f"_condor_{stream}")
            fd = os.open(paths[stream], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.fchown(fd, uid, gid)
            os.close(fd)
        return self.start(user, [PYTHON, "-m", "condor_docker.cli", "launch", "--socket", agent.socket],
                          launcher_env(self.scratch), self.scratch, **paths)

    def job_exit(self, agent, user: str, job_ad: str, cwd: str = "/") -> dict:
        """The JOB_EXIT hook as the starter runs it: `<hook> exit`, the ad plus PREPARE_JOB's edits on stdin."""
        ad = job_ad + f'CondorDockerAgentSocket = "{agent.socket}"\nExitCode = 0\nJobState = "Exited"\n'
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": CODE_PATH, "_CONDOR_SLOT": "slot1_1"}
        return self.wait(self.start(user, [PYTHON, "-c", JOB_EXIT, "exit"], env, cwd, input=ad), 60)

    def close(self) -> None:
        for pid in list(self.children):
            self.children.remove(pid)
            self.ask(kill=pid)
        self.process.stdin.close()
        self.process.wait(timeout=30)
        shutil.rmtree(self.scratch, ignore_errors=True)


@pytest.fixture
def fake_starter(execute_dir, test_users):
    made: list[FakeStarter] = []

    def make() -> FakeStarter:
        made.append(FakeStarter(execute_dir, test_users))
        return made[-1]
    yield make
    for starter in made:
        starter.close()


def test_job_exit_removes_its_own_starters_container_and_refuses_any_other(
        agent, fake_starter, real_job_ad, launcher_env, managed_containers, wait_until, test_users):
    job_ad = real_job_ad(Arguments="-c 'sleep 300'")
    ours, other = fake_starter(), fake_starter()
    ours.make_scratch("cdtest1", job_ad)
    launcher = ours.launch(agent, "cdtest1", launcher_env)

    def proven():
        return [name for name, c in managed_containers().items()
                if c["State"]["Running"] and c["Config"]["Labels"].get(STARTER_LABEL) == str(ours.pid)]
    name = wait_until(proven, 90, "the job's container runs with its starter proven")[0]
    uid1, uid2 = test_users["cdtest1"][0], test_users["cdtest2"][0]

    # the same user's hook under another job's starter, with this job's very ad: nothing of this job's
    done = other.job_exit(agent, "cdtest1", job_ad)
    assert done["rc"] == 0 and "removed" not in done["stderr"], done
    assert managed_containers()[name]["State"]["Running"], agent.log_tail()
    assert f"op=cleanup_starter_job uid={uid1} pid=" in agent.log_text()
    assert f"container=- result=ok starter={other.pid}" in agent.log_text(), agent.log_tail()

    # another user's hook under this job's own starter: not that user's container
    done = ours.job_exit(agent, "cdtest2", job_ad)
    assert done["rc"] == 0 and "removed" not in done["stderr"], done
    assert managed_containers()[name]["State"]["Running"], agent.log_tail()
    assert f"op=cleanup_starter_job uid={uid2} pid=" in agent.log_text()

    # the job's own hook under its own starter: its container goes, asked without a job id
    done = ours.job_exit(agent, "cdtest1", job_ad)
    assert done["rc"] == 0 and f"the job of this condor_starter: removed {name}" in done["stderr"], done
    assert name not in managed_containers(), agent.log_tail()
    assert f"container={name} result=ok starter={ours.pid}" in agent.log_text(), agent.log_tail()
    assert "op=cleanup " not in agent.log_text(), "no hook fell back to the job id from the ad"
    ours.wait(launcher, 60)   # the launcher ends with its container
