"""Start-up cost of the per-job entry points: the JOB_EXIT hook, the PREPARE_JOB hook, the launcher.

Each one is run as the starter would (the console script's two lines, the
real pool's ad on stdin or .job.ad in a scratch dir), against a socket nobody
listens on: what is timed is the start-up up to the agent call, which is what
a change to the imports moves (the agent's answer costs the same either way).
Trees are run interleaved, so a loaded machine slows all of them alike.

    python bench/hook_start.py [--runs 20] TREE [TREE ...]

Prints, per tree and entry point, the median wall time (ms) of `runs` runs and
the median cumulative `-X importtime` of the entry point's module (ms, the
whole import / condor_docker's own modules).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

PYTHON = "/opt/condor_docker/venv/bin/python"
NO_AGENT = "/nonexistent/condor_docker/agent.sock"
CLI = "import sys; from condor_docker.cli import main; sys.exit(main())"
JOB_EXIT = "import sys; from condor_docker.starter.job_exit import job_exit_entry; sys.exit(job_exit_entry())"
MODULES = {"job-exit": "condor_docker.starter.job_exit", "prepare-job": "condor_docker.starter.prepare_job",
           "launch": "condor_docker.starter.launch"}


def fixture(tree: str, name: str) -> str:
    with open(os.path.join(tree, "tests", "fixtures", "real-pool", name)) as stream:
        return stream.read()


def entry_points(tree: str, scratch: str) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (argv, env, stdin) of each entry point as the starter runs it."""
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": tree, "_CONDOR_SLOT": "slot1_1"}
    exit_ad = fixture(tree, "job-exit-hook-stdin.ad") + f'CondorDockerAgentSocket = "{NO_AGENT}"\n'
    launcher_env = dict(base, _CONDOR_SCRATCH_DIR=scratch, _CONDOR_JOB_AD=os.path.join(scratch, ".job.ad"),
                        _CONDOR_MACHINE_AD=os.path.join(scratch, ".machine.ad"), CONDOR_STARTER_PID="1")
    return {
        "job-exit": ([PYTHON, "-c", JOB_EXIT, "exit"], base, exit_ad),
        "prepare-job": ([PYTHON, "-c", CLI, "prepare-job", "--socket", NO_AGENT], base,
                        fixture(tree, "prepare-hook-stdin.ad")),
        "launch": ([PYTHON, "-c", CLI, "launch", "--socket", NO_AGENT], launcher_env, ""),
    }


def wall_ms(argv: list[str], env: dict[str, str], stdin: str, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, input=stdin, text=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def import_ms(tree: str, module: str) -> tuple[float, float]:
    """(whole import, condor_docker's own modules' self time) in ms, from -X importtime."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": tree})
    total = own = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if name.strip() == module:
            total = int(cumulative_us)
        if name.strip().startswith("condor_docker"):
            own += int(self_us)
    return total / 1000, own / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("trees", nargs="+")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="cdbench-")
    try:
        for name in ("job.ad", "machine.ad"):
            with open(os.path.join(scratch, f".{name}"), "w") as stream:
                stream.write(fixture(args.trees[0], name))
        points = {tree: entry_points(os.path.abspath(tree), scratch) for tree in args.trees}
        walls = {(tree, name): [] for tree in args.trees for name in MODULES}
        imports = {(tree, name): [] for tree in args.trees for name in MODULES}
        for tree in args.trees:   # warm the bytecode caches
            for argv, env, stdin in points[tree].values():
                wall_ms(argv, env, stdin, scratch)
        for _ in range(args.runs):
            for name in MODULES:
                for tree in args.trees:
                    walls[tree, name].append(wall_ms(*points[tree][name], scratch))
                    imports[tree, name].append(import_ms(os.path.abspath(tree), MODULES[name]))
        for tree in args.trees:
            for name in MODULES:
                total = statistics.median(t for t, _ in imports[tree, name])
                own = statistics.median(o for _, o in imports[tree, name])
                print(f"{tree:<24} {name:<12} wall {statistics.median(walls[tree, name]):6.1f} ms   "
                      f"import {total:5.1f} / {own:4.1f} ms")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
