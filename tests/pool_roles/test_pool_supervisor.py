"""The node's PID-1 supervisor with stand-ins for condor_master and condor_off on PATH.

SIGTERM must become `condor_off -fast -master`, a wait, and exit 0; a master
that dies on its own must end the node with 1 (so the orchestrator restarts
it); the health endpoint must answer 200/503 with the check's one line.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from testpaths import REPO

from condor_docker.pool import rolehealth

MASTER = """#!/bin/sh
echo $$ > "$STATE/master.pid"
trap 'echo got-term >> "$STATE/master.log"; exit 0' TERM
while :; do sleep 0.1; done
"""
OFF = """#!/bin/sh
echo "$@" >> "$STATE/off.log"
kill -TERM "$(cat "$STATE/master.pid")"
"""
RUN = ("import logging, os, sys; from condor_docker.pool.entrypoint import Supervisor; "
       "logging.basicConfig(level=logging.INFO); "
       "sys.exit(Supervisor(dict(os.environ), float(sys.argv[1])).run())")


def start(tmp_path, off_script: str = OFF) -> subprocess.Popen:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("condor_master", MASTER), ("condor_off", off_script)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STATE=str(tmp_path),
               PYTHONPATH=REPO)
    node = subprocess.Popen([sys.executable, "-c", RUN, "10"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "master.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "master.pid").exists(), node.stderr.read() if node.poll() is not None else "no master"
    return node


def test_sigterm_runs_condor_off_fast_waits_and_exits_0(tmp_path):
    node = start(tmp_path)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=30) == 0
    assert (tmp_path / "off.log").read_text().split() == ["-fast", "-master"]
    assert "got-term" in (tmp_path / "master.log").read_text()
    assert "condor_master stopped" in node.stderr.read()


def test_failing_condor_off_falls_back_to_sigquit(tmp_path):
    node = start(tmp_path, off_script="#!/bin/sh\necho 'Can't send Kill-Daemon-Fast' >&2\nexit 1\n")
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=30) == 0  # SIGQUIT's default action ends the stand-in master
    assert "sending the master SIGQUIT" in node.stderr.read()


def test_master_dying_on_its_own_ends_the_node_with_1(tmp_path):
    node = start(tmp_path)
    os.kill(int((tmp_path / "master.pid").read_text()), signal.SIGKILL)
    assert node.wait(timeout=30) == 1
    assert "exited on its own" in node.stderr.read()


def test_health_endpoint_answers_200_or_503_with_the_line():
    verdict = {"value": (False, "execute ep-1: not running: condor_startd")}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server_thread = threading.Thread(target=rolehealth.serve, args=(f"127.0.0.1:{port}", lambda: verdict["value"]),
                                     daemon=True)
    server_thread.start()
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("a failing check must not answer 200")
        except urllib.error.HTTPError as err:
            assert err.code == 503 and err.read().decode() == "execute ep-1: not running: condor_startd\n"
            break
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the endpoint never listened"
            time.sleep(0.1)
