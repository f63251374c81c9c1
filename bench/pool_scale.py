"""A big execute point on a real pool: N concurrent docker jobs, then a burst, ours vs HTCondor's own.

    python bench/pool_scale.py [--slots N] [--sleep S] [--burst M] [--only ours|native]

One personal pool per side from the same HTCondor install and base config
(tests/htcondor_pool/poolfixture.py), each with one partitionable slot of `--slots`
CPUs (NUM_CPUS, whatever the machine has): a site's 200-core execute point, on a
small machine.  The sides run one after the other (N jobs at once on two pools would
measure the machine, not the execute point).  For each it prints, as the user and
the admin see them:

  concurrent   N `sleep S` jobs in one cluster: submit to all N containers running
               at once (S must outlast the start of all N), submit to
               the last one done, and from the last job's end to nothing left
               (containers, scratch dirs; ours also the agent's job table)
  burst        M `/bin/true` jobs: submit to the last one done, and jobs per minute
  EP overhead  per job on the execute point, from every StarterLog start of the
               burst (D_SUB_SECOND, the phases of bench/pool.py): p50 and p99
  agent        ours only: RSS (MB), threads and open fds of `condor_docker agent` at 0,
               N/2 and N running jobs, and after; its CPU seconds per job over the run

then the ratio ours / native where both have a figure (below 1.0: condor_docker is
faster).  Needs root, the engine (scripts/engine-up.sh) and HTCondor
(scripts/htcondor-up.sh).  A benchmark, never a timed test: no pass/fail.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import psutil  # noqa: E402
from pool import MARKS, REPO, USER, start_pool  # noqa: E402  (bench/pool.py: same pools, same marks)
from poolfixture import Pool, cluster_submit, find_htcondor  # noqa: E402
from testusers import ensure_users  # noqa: E402

SCALE_CONFIG = """\
# bench/pool_scale.py: one partitionable slot of {slots} CPUs, small jobs
NUM_CPUS = {slots}
MEMORY = {memory}
MAX_JOBS_RUNNING = 10000
CLAIM_PARTITIONABLE_LEFTOVERS = True
"""



@dataclass
class AgentSample:
    """The agent's footprint at one moment (ours only)."""
    running: int
    rss_mb: float
    threads: int
    fds: int
    cpu_seconds: float


@dataclass
class SideResult:
    """What one side measured (seconds unless named otherwise)."""
    all_running: float | None = None
    concurrent_done: float | None = None
    to_nothing_left: float | None = None
    burst_done: float | None = None
    jobs_per_minute: float | None = None
    overhead: list[float] = field(default_factory=list)
    agent: list[AgentSample] = field(default_factory=list)
    agent_cpu_per_job: float | None = None


def agent_process(pool: Pool) -> psutil.Process | None:
    """The pool's `condor_docker agent` (None on the native side)."""
    for process in pool.processes():
        try:
            if "agent" in process.cmdline() and any("condor_docker" in a for a in process.cmdline()):
                return process
        except psutil.Error:
            continue
    return None


def sample(agent: psutil.Process | None, running: int) -> AgentSample | None:
    if agent is None:
        return None
    try:
        with agent.oneshot():
            cpu = agent.cpu_times()
            return AgentSample(running, agent.memory_info().rss / 2**20, agent.num_threads(),
                               agent.num_fds(), cpu.user + cpu.system)
    except psutil.Error:
        return None


def queued_count(pool: Pool, cluster: int) -> int:
    """Jobs of the cluster still in the queue (done jobs leave it)."""
    return len(pool.condor("condor_q", str(cluster), "-af", "JobStatus", user=USER, timeout=60).stdout.split())


def pool_containers(pool: Pool, running_only: bool = False) -> list[dict]:
    """The engine's containers that mount this pool's execute dir, either side (native's carry no label of ours).

    Counted at the engine, not from condor_q: a job is "running" there from the
    shadow's start, well before its container is.
    """
    import docker
    client = docker.from_env(timeout=30)
    try:
        prefix = pool.execute_dir.rstrip("/") + "/"
        listed = client.api.containers(all=not running_only)
    finally:
        client.close()
    return [c for c in listed if any((m.get("Source") or "").startswith(prefix) for m in c.get("Mounts") or ())]


def left_behind(pool: Pool) -> list[str]:
    """Containers and scratch dirs of this pool, either side (native's containers carry no label of ours)."""
    left = [f"container {c['Names']}" for c in pool_containers(pool)]
    if os.path.isdir(pool.execute_dir):
        left += [f"scratch dir {name}" for name in os.listdir(pool.execute_dir)]
    return left


def concurrent(pool: Pool, count: int, sleep: int, result: SideResult) -> None:
    """`count` sleepers at once; the agent sampled at 0, count/2 and count running, and after."""
    agent = agent_process(pool)
    marks = {0, count // 2, count}
    seen: set[int] = set()
    first = sample(agent, 0)
    started = time.perf_counter()
    job = pool.submit(cluster_submit(count, f"sleep {sleep}", network="none"), user=USER)
    deadline = started + 1800
    finished_at = None
    peak: AgentSample | None = None
    while time.perf_counter() < deadline:
        running, queued = len(pool_containers(pool, running_only=True)), queued_count(pool, job.cluster)
        for mark in sorted(marks - seen):
            if running >= mark and mark:
                seen.add(mark)
                if (s := sample(agent, running)) is not None:
                    result.agent.append(s)
        if agent is not None and running > (peak.running if peak else 0):
            peak = sample(agent, running) or peak
        if running >= count and result.all_running is None:
            result.all_running = time.perf_counter() - started
        if queued == 0:
            finished_at = time.perf_counter()
            break
        time.sleep(1)
    if finished_at is None:
        raise SystemExit(f"the {count} sleepers were not done in 30 min")
    result.concurrent_done = finished_at - started
    while left_behind(pool) and time.perf_counter() < finished_at + 600:
        time.sleep(0.5)
    result.to_nothing_left = time.perf_counter() - finished_at
    if peak is not None and all(s.running != peak.running for s in result.agent):
        result.agent.append(peak)      # the most at once, when N never ran at once
    result.agent.sort(key=lambda s: s.running)
    last = sample(agent, 0)
    if last is not None:
        result.agent.append(last)
    if first is not None:
        result.agent.insert(0, first)


def burst(pool: Pool, count: int, result: SideResult) -> None:
    """`count` trivial jobs; per-job EP overhead from every starter start logged meanwhile."""
    agent = agent_process(pool)
    before = sample(agent, 0)
    offsets = {name: len(pool.log(name)) for name in starter_logs(pool)}
    started = time.perf_counter()
    job = pool.submit(cluster_submit(count, "true", network="none"), user=USER)
    pool.condor("condor_wait", "-wait", "1800", f"{job.dir}/job.log", user=USER, timeout=1820)
    result.burst_done = time.perf_counter() - started
    result.jobs_per_minute = count / result.burst_done * 60
    codes = [ad.get("ExitCode") for ad in pool.ads(job)]
    if codes != [0] * count:
        raise SystemExit(f"burst jobs did not all succeed: {sorted(set(map(str, codes)))}")
    time.sleep(3)   # the last starters' final lines
    for name in starter_logs(pool):
        result.overhead += overheads(pool.log(name)[offsets.get(name, 0):])
    after = sample(agent, 0)
    if before is not None and after is not None:
        result.agent_cpu_per_job = (after.cpu_seconds - before.cpu_seconds) / count


def starter_logs(pool: Pool) -> list[str]:
    return [n for n in os.listdir(pool.log_dir) if n.startswith("StarterLog.slot")]


def overheads(text: str) -> list[float]:
    """Seconds from input transferred to the starter done, minus the job's own run, per start in `text`.

    The job is /bin/true, so its own run is ~0: the whole span is execute-point overhead
    (setup + run + teardown of bench/pool.py's MARKS).
    """
    found = []
    for chunk in text.split("STARTING UP")[1:]:
        stamps: dict[str, float] = {}
        for line in chunk.splitlines():
            for name, mark, which in MARKS:
                if mark in line and (name not in stamps or which == "last"):
                    try:
                        hours, minutes, seconds = line.split()[1].split(":")
                        stamps[name] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
                    except (IndexError, ValueError):
                        continue
        if "setup" in stamps and "end" in stamps:
            found.append(stamps["end"] - stamps["setup"])
    return found


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_side(install: str, native: bool, args: argparse.Namespace) -> SideResult:
    result = SideResult()
    pool = start_pool(install, native)
    try:
        memory = args.slots * 64 + 1024
        pool.write_config("98-scale.conf", SCALE_CONFIG.format(slots=args.slots, memory=memory))
        ad = pool.restart_startd(timeout=300)     # NUM_CPUS and MEMORY take a new startd
        if ad.get("TotalSlotCpus") != args.slots:
            raise SystemExit(f"the startd has {ad.get('TotalSlotCpus')} CPUs, not {args.slots}")
        concurrent(pool, args.slots, args.sleep, result)
        burst(pool, args.burst, result)
    finally:
        pool.stop()
        pool.destroy()
    return result


def report(results: dict[str, SideResult], args: argparse.Namespace) -> None:
    rows = [
        (f"{args.slots} sleepers: submit to all running (s)", lambda r: r.all_running),
        (f"{args.slots} sleepers: submit to last done (s)", lambda r: r.concurrent_done),
        ("last job done to nothing left (s)", lambda r: r.to_nothing_left),
        (f"{args.burst}-job burst: submit to last done (s)", lambda r: r.burst_done),
        (f"{args.burst}-job burst: jobs per minute", lambda r: r.jobs_per_minute),
        ("EP overhead per job, p50 (s)", lambda r: percentile(r.overhead, 0.5)),
        ("EP overhead per job, p99 (s)", lambda r: percentile(r.overhead, 0.99)),
        ("agent CPU seconds per burst job", lambda r: r.agent_cpu_per_job),
    ]
    print(f"{'':52s} {'native':>9s} {'ours':>9s} {'ours/native':>12s}")
    for label, pick in rows:
        native, ours = (pick(results[n]) if n in results else None for n in ("native", "ours"))
        ratio = f"{ours / native:12.2f}" if native and ours is not None else f"{'-':>12s}"
        print(f"{label:52s} {_cell(native)} {_cell(ours)} {ratio}")
    ours = results.get("ours")
    if ours and ours.agent:
        print("\nthe agent (ours):  running  RSS MB  threads  fds")
        for s in ours.agent:
            print(f"                   {s.running:7d} {s.rss_mb:7.1f} {s.threads:8d} {s.fds:4d}")
        busiest = max(ours.agent, key=lambda s: s.running)
        idle = ours.agent[0]
        if busiest.running:
            print(f"per running job: {(busiest.rss_mb - idle.rss_mb) / busiest.running:.2f} MB, "
                  f"{(busiest.threads - idle.threads) / busiest.running:.2f} threads, "
                  f"{(busiest.fds - idle.fds) / busiest.running:.2f} fds")


def _cell(value: float | None) -> str:
    return f"{value:9.2f}" if value is not None else f"{'-':>9s}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=200, help="CPUs of the partitionable slot = concurrent jobs")
    parser.add_argument("--sleep", type=int, default=120, help="seconds each concurrent job sleeps")
    parser.add_argument("--burst", type=int, default=1000, help="trivial jobs in the burst")
    parser.add_argument("--only", choices=("ours", "native"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (it starts HTCondor's daemons)")
    if min(args.slots, args.sleep, args.burst) < 1:
        raise SystemExit("--slots, --sleep and --burst must be at least 1")
    install, why = find_htcondor(REPO)
    if install is None:
        raise SystemExit(why)
    ensure_users()
    results = {name: run_side(install, name == "native", args)
               for name in ("native", "ours") if args.only in (None, name)}
    print(f"HTCondor {os.path.basename(install)}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB, {time.strftime('%Y-%m-%d')}")
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
