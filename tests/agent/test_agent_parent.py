"""The agent stops when the condor_master that started it is gone, and only then.

Test pools' agents once outlived their pools: condor_master stopped (killed),
the agent still running, holding the engine for a pool that was no longer
there.  Here a stand-in master (a process that starts the agent and waits, as
condor_master does with DAEMON_LIST) is killed -9; the agent must notice,
stop as on SIGTERM (its socket removed, a running job's container left for
its launcher) and exit.  While the stand-in lives, the agent serves.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from testpaths import CODE_PATH

pytestmark = [pytest.mark.root, pytest.mark.engine]

# the stand-in master: start the agent, print its pid, wait for it (a master reaps its daemons)
MASTER = ("import subprocess, sys\n"
          "agent = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)\n"
          "print(agent.pid, flush=True)\n"
          "agent.wait()\n")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_agent_stops_when_its_master_is_killed(agent_factory, wait_until):
    agent = agent_factory()
    argv = agent.argv()
    agent.stop()                     # the fixture's own start: this test starts it under a stand-in master
    env = dict(os.environ, PYTHONPATH=CODE_PATH)
    master = subprocess.Popen([sys.executable, "-c", MASTER, *argv], env=env, stdout=subprocess.PIPE, text=True)
    agent_pid = int(master.stdout.readline())
    try:
        agent.wait_ready()
        time.sleep(2)                # several of the serve loop's rounds with its parent alive
        assert not _gone(agent_pid) and agent.call("ping")["ok"]
        master.send_signal(signal.SIGKILL)
        master.wait(10)
        wait_until(lambda: _gone(agent_pid), 20, f"agent {agent_pid} exited after its master was killed")
        assert not os.path.exists(agent.socket)
        assert "has exited: stopping" in agent.log_text()
    finally:
        if not _gone(agent_pid):
            os.kill(agent_pid, signal.SIGKILL)
        if master.poll() is None:
            master.kill()
            master.wait(10)
