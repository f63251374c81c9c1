"""condor_docker vs HTCondor's own docker universe on the same real pool config, side by side.

    python bench/pool_throughput.py [--trivial N] [--burst N] [--only ours|native]

Starts two personal pools one after the other from the same HTCondor install and the
same base config (tests/pool/poolfixture.py): one with condor_docker installed from
config.d, one with HTCondor's own docker universe (DOCKER = the docker CLI).  In each
it times a trivial job (submit to done, as the user sees it: condor_submit, then
condor_wait on the job's event log) and a burst of jobs in one cluster.  Prints the
times and the ratios ours / native (below 1.0 = we are faster), and for the last trivial
job where its time went on the execute point (from the StarterLog with D_SUB_SECOND):
setup (input transferred -> job process started; ours includes PREPARE_JOB), run (job
process started -> ended; ours: launcher, agent, container), teardown (-> starter done;
ours includes JOB_EXIT).  Needs root, the
engine (scripts/engine-up.sh) and HTCondor (scripts/htcondor-up.sh).  No pass/fail.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "tests", "pool"), os.path.join(REPO, "tests")]

from poolfixture import REGISTRY_IMAGE, Pool, find_htcondor  # noqa: E402
from testusers import ensure_users  # noqa: E402

USER = "cdtest1"


def submit_text(count: int) -> str:
    return f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
docker_network_type = none
executable = /bin/true
transfer_executable = false
should_transfer_files = YES
output = out.$(Process).txt
error = err.$(Process).txt
log = job.log
request_memory = 32M
queue {count}
"""


def timed_cluster(pool: Pool, count: int) -> float:
    """Seconds from condor_submit to the last job's termination event (condor_wait on the log)."""
    started = time.perf_counter()
    job = pool.submit(submit_text(count), user=USER)
    pool.condor("condor_wait", "-wait", "600", f"{job.dir}/job.log", user=USER, timeout=620)
    elapsed = time.perf_counter() - started
    codes = [ad.get("ExitCode") for ad in pool.ads(job)]
    if codes != [0] * count:
        raise SystemExit(f"jobs did not all succeed: {codes}\n{pool.explain(job, 'done')}")
    return elapsed


# Starter log lines (with D_SUB_SECOND) that bound the phases of one job on the execute point.
MARKS = (("setup", "File transfer completed successfully."),   # input transfer done
         ("run", "Create_Process succeeded"),                 # the job process (ours: the launcher) started
         ("teardown", "Process exited, pid="),                # the job process ended
         ("end", "All jobs have exited"))                      # the starter is done


# The same in both pools: sub-second starter logs, and matchmaking every second, so that
# a job's wait for the next negotiation cycle (up to NEGOTIATOR_CYCLE_DELAY) does not
# drown what differs between the two: the execute point.
BENCH_CONFIG = """\
STARTER_DEBUG = D_SUB_SECOND
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 1
"""


def phases(pool: Pool) -> dict[str, float]:
    """Seconds of the last starter's setup (ours: PREPARE_JOB), run and teardown (ours: JOB_EXIT)."""
    logs = [n for n in os.listdir(pool.log_dir) if n.startswith("StarterLog.slot")]
    if not logs:
        return {}
    newest = max(logs, key=lambda n: os.path.getmtime(os.path.join(pool.log_dir, n)))
    text = pool.log(newest)
    last_start = text.rfind("STARTING UP")
    stamps: dict[str, float] = {}
    for line in text[last_start:].splitlines():
        for name, mark in MARKS:
            if mark in line and name not in stamps:
                clock = line.split()[1]                       # 11/23/26 12:48:50.487 (pid:...)
                hours, minutes, seconds = clock.split(":")
                stamps[name] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    names = [name for name, _ in MARKS]
    return {names[i]: stamps[names[i + 1]] - stamps[names[i]]
            for i in range(len(names) - 1) if names[i] in stamps and names[i + 1] in stamps}


def measure(pool: Pool, trivial_runs: int, burst: int) -> dict[str, float]:
    pool.write_config("99-bench.conf", BENCH_CONFIG)
    pool.reconfig(settle=2)
    timed_cluster(pool, 1)   # warm up: first match, first claim, image already local
    trivial = [timed_cluster(pool, 1) for _ in range(trivial_runs)]
    result = {"trivial": statistics.median(trivial)}
    result.update({f"phase_{k}": v for k, v in phases(pool).items()})
    result["burst"] = timed_cluster(pool, burst)
    return result


def run_pool(install: str, native: bool, trivial_runs: int, burst: int) -> dict[str, float]:
    docker_cli = shutil.which("docker") if native else None
    if native and docker_cli is None:
        raise SystemExit("no docker CLI for HTCondor's own docker universe")
    if native:
        # HTCondor's own docker universe runs the CLI as the condor user (its manual: put
        # condor in the docker group); ours never gives the condor user the socket.
        subprocess.run(["usermod", "-aG", "docker", "condor"], check=True)
    pool = Pool.create(install, REPO, native_docker=docker_cli)
    try:
        result = measure(pool, trivial_runs, burst)
        result["has_docker_after"] = pool.has_docker_after or 0.0
        return result
    finally:
        pool.stop()
        pool.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=3, help="trivial jobs, one after the other (median)")
    parser.add_argument("--burst", type=int, default=20, help="jobs in the burst cluster")
    parser.add_argument("--only", choices=("ours", "native"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (it starts HTCondor's daemons)")
    install, why = find_htcondor(REPO)
    if install is None:
        raise SystemExit(why)
    ensure_users()
    results = {}
    for name in ("native", "ours"):
        if args.only in (None, name):
            results[name] = run_pool(install, name == "native", args.trivial, args.burst)
            r = results[name]
            print(f"{name:7s} trivial job {r['trivial']:5.1f} s   {args.burst}-job burst "
                  f"{r['burst']:5.1f} s   HasDocker after startd start {r['has_docker_after']:4.1f} s", flush=True)
            print(f"        on the execute point (last trivial job): setup {r.get('phase_setup', -1):.2f} s, "
                  f"run {r.get('phase_run', -1):.2f} s, teardown {r.get('phase_teardown', -1):.2f} s "
                  f"(the rest is matchmaking, claiming and the shadow)", flush=True)
    if len(results) == 2:
        for key, label in (("trivial", "trivial job"), ("burst", f"{args.burst}-job burst")):
            print(f"ratio ours/native, {label}: {results['ours'][key] / results['native'][key]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
