"""condor_docker vs HTCondor's own docker universe on the same real pool config, side by side.

    python bench/pool.py [--trivial N] [--burst N] [--stdout-mb N] [--only ours|native]

Starts two personal pools side by side from the same HTCondor install and the same
base config (tests/htcondor_pool/poolfixture.py): one with condor_docker installed from
config.d, one with HTCondor's own docker universe (DOCKER = the docker CLI).  The
pools take turns job by job (native first, then ours first, ...), so a slow moment of
the machine lands on both.  In each it times, as the user sees it (condor_submit,
then condor_wait on the job's event log):

  trivial      one /bin/true job, submit to done (median of --trivial runs)
  burst        --burst jobs in one cluster, submit to the last one done
  stdout       one job writing --stdout-mb MB to stdout, submit to done (size checked;
               median of --trivial runs), and its EP run phase (below): the submit-to-done
               figures carry matchmaking's noise, the EP phases only the execute point's
  EP overhead  per job on the execute point, from each trivial job's StarterLog (median)
               (D_SUB_SECOND): setup (input transferred -> first process started; ours
               includes PREPARE_JOB, native its `docker pull -q` check), run (-> the last
               process ended; ours: launcher, agent, container; native: `docker create`
               then `docker start -a`), teardown (-> starter done; ours includes
               JOB_EXIT, native its inspect and `docker rm`), and their sum

and prints every line for both, then the ratio ours / native on every line (below 1.0:
condor_docker is faster).  Needs root, the engine (scripts/engine-up.sh) and HTCondor
(scripts/htcondor-up.sh).  No pass/fail: a benchmark, never a timed test.
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
sys.path[:0] = [os.path.join(REPO, "tests", "htcondor_pool"), os.path.join(REPO, "tests")]

from poolfixture import Pool, cluster_submit, find_htcondor  # noqa: E402
from testusers import ensure_users  # noqa: E402

USER = "cdtest1"


def timed_cluster(pool: Pool, count: int, command: str = "/bin/true", stdout_bytes: int | None = None) -> float:
    """Seconds from condor_submit to the last job's termination event (condor_wait on the log)."""
    started = time.perf_counter()
    job = pool.submit(cluster_submit(count, command, network="none"), user=USER)
    pool.condor("condor_wait", "-wait", "600", f"{job.dir}/job.log", user=USER, timeout=620)
    elapsed = time.perf_counter() - started
    codes = [ad.get("ExitCode") for ad in pool.ads(job)]
    if codes != [0] * count:
        raise SystemExit(f"jobs did not all succeed: {codes}\n{pool.explain(job, 'done')}")
    if stdout_bytes is not None:
        size = os.path.getsize(os.path.join(job.dir, "out.0.txt"))
        if size != stdout_bytes:
            raise SystemExit(f"stdout has {size} bytes, not {stdout_bytes}")
    return elapsed


# Starter log lines (with D_SUB_SECOND) that bound the phases of one job on the execute point.
# The run ends at the *last* process exit: HTCondor's own docker universe runs `docker
# create` (its first Create_Process/Process exited pair) and then `docker start -a`.
MARKS = (("setup", "File transfer completed successfully.", "first"),   # input transfer done
         ("run", "Create_Process succeeded", "first"),                 # ours: the launcher; native: docker create
         ("teardown", "Process exited, pid=", "last"),                 # the job's last process ended
         ("end", "All jobs have exited", "first"))                      # the starter is done


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
        for name, mark, which in MARKS:
            if mark in line and (name not in stamps or which == "last"):
                clock = line.split()[1]                       # 11/23/26 12:48:50.487 (pid:...)
                hours, minutes, seconds = clock.split(":")
                stamps[name] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    names = [name for name, _, _ in MARKS]
    return {names[i]: stamps[names[i + 1]] - stamps[names[i]]
            for i in range(len(names) - 1) if names[i] in stamps and names[i + 1] in stamps}


def start_pool(install: str, native: bool) -> Pool:
    docker_cli = shutil.which("docker") if native else None
    if native and docker_cli is None:
        raise SystemExit("no docker CLI for HTCondor's own docker universe")
    if native:
        # HTCondor's own docker universe runs the CLI as the condor user (its manual: put
        # condor in the docker group); ours never gives the condor user the socket.
        subprocess.run(["usermod", "-aG", "docker", "condor"], check=True)
    pool = Pool.create(install, REPO, native_docker=docker_cli)
    pool.write_config("99-bench.conf", BENCH_CONFIG)
    pool.reconfig(settle=2)
    timed_cluster(pool, 1)   # warm up: first match, first claim, image already local
    return pool


def interleaved(pools: dict[str, Pool], runs: int, job) -> dict[str, list]:
    """`job(pool)` `runs` times in each pool, alternating which pool goes first each round.

    Both pools run at once and take turns, so a slow minute of a shared machine
    lands on both sides instead of on whichever pool happened to be measured then.
    """
    found: dict[str, list] = {name: [] for name in pools}
    order = list(pools)
    for round_ in range(runs):
        for name in (order if round_ % 2 == 0 else order[::-1]):
            found[name].append(job(pools[name]))
    return found


def with_phases(pool: Pool, command: str = "/bin/true", stdout_bytes: int | None = None
                ) -> tuple[float, dict[str, float]]:
    """One job's submit-to-done time, and its EP phases once its starter has logged its last line."""
    seconds = timed_cluster(pool, 1, command, stdout_bytes)
    deadline = time.monotonic() + 3
    steps = phases(pool)
    while len(steps) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        steps = phases(pool)
    return seconds, steps


def medians(samples: list[tuple[float, dict[str, float]]], prefix: str) -> dict[str, float]:
    """Median submit-to-done time (`prefix`) and median phases (`prefix_setup`, ..., `prefix_total`)."""
    found = {prefix: statistics.median(seconds for seconds, _ in samples)}
    for key in ("setup", "run", "teardown"):
        values = [steps[key] for _, steps in samples if key in steps]
        if values:
            found[f"{prefix}_{key}"] = statistics.median(values)
    totals = [sum(steps.values()) for _, steps in samples if len(steps) == 3]
    if totals:
        found[f"{prefix}_total"] = statistics.median(totals)
    return found


def measure(pools: dict[str, Pool], runs: int, burst: int, stdout_mb: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {name: {} for name in pools}
    for name, samples in interleaved(pools, runs, with_phases).items():
        results[name].update(medians(samples, "trivial"))
    for name, samples in interleaved(pools, 1, lambda pool: timed_cluster(pool, burst)).items():
        results[name]["burst"] = samples[0]
    size = stdout_mb * 1_000_000
    stdout_job = lambda pool: with_phases(pool, f"head -c {size} /dev/zero", stdout_bytes=size)  # noqa: E731
    for name, samples in interleaved(pools, runs, stdout_job).items():
        results[name].update(medians(samples, "stdout"))
    for name, pool in pools.items():
        results[name]["has_docker_after"] = pool.has_docker_after or 0.0
    return results


def lines(burst: int, stdout_mb: int) -> list[tuple[str, str]]:
    """(result key, label) of every line that is printed and compared."""
    return [("trivial", "trivial job, submit to done"),
            ("burst", f"{burst}-job burst, submit to last done"),
            ("stdout", f"{stdout_mb} MB of stdout, submit to done"),
            ("stdout_run", f"{stdout_mb} MB of stdout, EP run"),
            ("trivial_setup", "EP setup (ours: PREPARE_JOB)"),
            ("trivial_run", "EP run (ours: launcher+agent; native: docker CLI)"),
            ("trivial_teardown", "EP teardown (ours: JOB_EXIT)"),
            ("trivial_total", "EP overhead per job (sum)"),
            ("has_docker_after", "HasDocker after the startd starts")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=5,
                        help="runs of the trivial and of the stdout job in each pool, taking turns (median)")
    parser.add_argument("--burst", type=int, default=20, help="jobs in the burst cluster")
    parser.add_argument("--stdout-mb", type=int, default=100, help="MB the stdout job writes")
    parser.add_argument("--only", choices=("ours", "native"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (it starts HTCondor's daemons)")
    install, why = find_htcondor(REPO)
    if install is None:
        raise SystemExit(why)
    ensure_users()
    pools: dict[str, Pool] = {}
    try:
        for name in ("native", "ours"):
            if args.only in (None, name):
                pools[name] = start_pool(install, name == "native")
        results = measure(pools, args.trivial, args.burst, args.stdout_mb)
    finally:
        for pool in pools.values():
            pool.stop()
            pool.destroy()
    print(f"{'seconds':52s} {'native':>8s} {'ours':>8s} {'ours/native':>12s}")
    for key, label in lines(args.burst, args.stdout_mb):
        native, ours = (results.get(n, {}).get(key) for n in ("native", "ours"))
        ratio = f"{ours / native:12.2f}" if native and ours is not None else f"{'-':>12s}"
        print(f"{label:52s} {_cell(native)} {_cell(ours)} {ratio}")
    print("(the rest of submit-to-done is matchmaking, claiming and the shadow, the same in both)")
    return 0


def _cell(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8s}"


if __name__ == "__main__":
    sys.exit(main())
