"""JOB_EXIT end to end: the hook run under a process named condor_starter, with a real agent answering.

What the starter waits for, whole: the hook's start, its ask, the agent's answer
(its starter proof and engine query).  As root: a private agent (from
--agent-tree) on a private socket, and tests/agent/test_job_exit_starter.py's
stand-in starter running each tree's hook as --user, trees interleaved.

    python bench/job_exit_e2e.py [--runs 20] [--agent-tree TREE] [--user nobody] TREE [TREE ...]

With an agent tree older than cleanup_starter_job, a new hook shows its fallback.
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/opt/condor_docker/venv/bin/python"


def start_agent(tree: str, directory: str) -> tuple[subprocess.Popen, str]:
    sock = os.path.join(directory, "agent.sock")
    argv = [PYTHON, "-m", "condor_docker.cli", "agent", "--socket", sock, "--log", os.path.join(directory, "log"),
            "--set", f"CONDOR_DOCKER_STATE_DIR={directory}", "--set", "DOCKER_PERFORM_TEST=false",
            "--set", f"CONDOR_DOCKER_EXECUTE_DIRS={directory}"]
    agent = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=tree), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)   # the socket exists a moment before the agent serves it
    return agent, sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--agent-tree", default=REPO)
    parser.add_argument("--user", default="nobody")
    parser.add_argument("trees", nargs="+")
    args = parser.parse_args()
    sys.path[:0] = [os.path.join(REPO, "tests", "agent"), os.path.join(REPO, "tests")]
    from test_job_exit_starter import JOB_EXIT, STARTER

    user = pwd.getpwnam(args.user)
    directory = tempfile.mkdtemp(prefix="cdbench-exit-")
    os.chmod(directory, 0o755)
    agent, sock = start_agent(os.path.abspath(args.agent_tree), directory)
    starter = subprocess.Popen([PYTHON, "-c", STARTER, "-a", "slot1_1"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)

    def ask(**request) -> dict:
        starter.stdin.write(json.dumps(request) + "\n")
        starter.stdin.flush()
        return json.loads(starter.stdout.readline())
    try:
        with open(os.path.join(REPO, "tests", "fixtures", "real-pool", "job-exit-hook-stdin.ad")) as stream:
            ad = stream.read() + f'CondorDockerAgentSocket = "{sock}"\n'
        walls: dict[str, list[float]] = {tree: [] for tree in args.trees}
        for run in range(args.runs + 1):   # the first run of each warms the caches
            for tree in args.trees:
                env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.abspath(tree), "_CONDOR_SLOT": "slot1_1"}
                start = time.perf_counter()
                pid = ask(argv=[PYTHON, "-c", JOB_EXIT, "exit"], env=env, cwd="/", uid=user.pw_uid,
                          gid=user.pw_gid, input=ad)["pid"]
                done = ask(wait=pid, timeout=60)
                if run:
                    walls[tree].append((time.perf_counter() - start) * 1000)
                elif done["rc"] != 0 or done["stderr"]:
                    print(f"{tree}: {done}")
        for tree, wall in walls.items():
            print(f"{tree:<24} job-exit with the agent answering: median {statistics.median(wall):6.1f} ms")
    finally:
        starter.stdin.close()
        starter.wait(timeout=10)
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
