"""Connection floods by one user must not starve another (as two real users, on a real agent)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

import pytest
from sectest import ATTACKER, CODE_PATH, PYTHON, agent_fds, agent_threads

pytestmark = [pytest.mark.root, pytest.mark.engine]
PIDS_CGROUP = "/sys/fs/cgroup/pids"


def start_attack(run_as, user, agent, mode, *args):
    return run_as(user, [PYTHON, "-c", ATTACKER, mode, agent.socket, *map(str, args)],
                  env={"PYTHONPATH": CODE_PATH}, cwd="/", stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result_of(process, timeout=120) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return json.loads(out.decode().splitlines()[-1])


def test_slow_clients_of_one_user_do_not_starve_another(agent_factory, attack, run_as):
    agent = agent_factory(CONDOR_DOCKER_REQUEST_TIMEOUT="4", CONDOR_DOCKER_MAX_CONNECTIONS_PER_UID="64")
    fds_before = agent_fds(agent)
    loris = start_attack(run_as, "cdtest2", agent, "slowloris", 300, 12)
    time.sleep(2.0)                                 # the slow connections are all open now
    during = agent_threads(agent)
    served = attack("cdtest1", agent, "parallel", 200)
    assert served["outcomes"] == {"ok": 200}, served
    slow = result_of(loris)
    assert slow["opened"] + slow["turned_away_at_connect"] == 300
    # every slow connection was let go: over the cap at once, the others at the request deadline
    assert slow["closed_by_agent"] == slow["opened"], slow
    assert during < 64 + 40, f"{during} agent threads while one uid held 300 slow connections"
    assert "CONDOR_DOCKER_MAX_CONNECTIONS_PER_UID = 64" in agent.log_text()
    time.sleep(0.5)
    assert agent_fds(agent) <= fds_before + 8
    assert agent.call("ping")["ok"]


def test_many_parallel_clients_are_all_served(agent, attack):
    served = attack("cdtest1", agent, "parallel", 200)
    assert served["outcomes"] == {"ok": 200}, served   # no EAGAIN: backlog and client retries


def pids_hierarchy() -> str | None:
    """The root of a cgroup hierarchy with the pids controller (v1 or v2), or None."""
    if os.path.isdir(PIDS_CGROUP):
        return PIDS_CGROUP
    controllers = "/sys/fs/cgroup/cgroup.controllers"
    if not os.path.exists(controllers) or "pids" not in open(controllers).read().split():
        return None
    try:
        with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as stream:
            stream.write("+pids")
    except OSError:
        return None
    return "/sys/fs/cgroup"


def cgroup_of(pid: int, hierarchy: str) -> str:
    """The process's cgroup dir in that hierarchy (to put it back afterwards)."""
    with open(f"/proc/{pid}/cgroup") as stream:
        for line in stream:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if (hierarchy == PIDS_CGROUP and "pids" in controllers.split(",")) or \
                    (hierarchy != PIDS_CGROUP and controllers == ""):
                return os.path.join(hierarchy, path.lstrip("/"))
    return hierarchy


def test_thread_exhaustion_is_logged_and_the_agent_keeps_serving(agent, run_as, attack):
    """The agent in a pids cgroup with little room: new threads fail; it says so and serves again after."""
    hierarchy = pids_hierarchy()
    if hierarchy is None:
        pytest.skip("needs a cgroup hierarchy with the pids controller")
    home = cgroup_of(agent.process.pid, hierarchy)
    cgroup = os.path.join(hierarchy, f"condor_docker-sec-{secrets.token_hex(4)}")
    os.mkdir(cgroup)
    try:
        with open(os.path.join(cgroup, "pids.max"), "w") as stream:
            stream.write(str(agent_threads(agent) + 8))
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as stream:
            stream.write(str(agent.process.pid))
        loris = start_attack(run_as, "cdtest2", agent, "slowloris", 60, 4)
        result_of(loris)
    finally:
        with open(os.path.join(home, "cgroup.procs"), "w") as stream:
            stream.write(str(agent.process.pid))
        os.rmdir(cgroup)
    assert "result=no-thread" in agent.log_text(), agent.log_tail()
    assert agent.process.poll() is None
    assert attack("cdtest1", agent, "parallel", 20)["outcomes"] == {"ok": 20}
