"""Soak: many jobs through the agent, with memory hogs, bad images, kills and agent crashes.

Run as root with the test engine up (scripts/engine-up.sh):

    PYTHONPATH=. /opt/condor_docker/venv/bin/python bench/soak.py --jobs 500

Each job is run as HTCondor would: a scratch dir under the agent's execute dir
holding `.job.ad`/`.machine.ad` (from the real-pool fixtures), and `condor_docker
launch` started as an ordinary user (nobody) with the starter's environment.
About 10 % of jobs go over their memory, 10 % name an image that does not exist,
10 % are sent SIGTERM mid-run (as a vacate would); the agent is killed -9 twice
(`--crashes`) and restarted.  At the end it prints outcomes by reason, leaked
containers, images over the cache limits, and the agent's figures (open fds,
sockets to dockerd, threads, RSS; condor_docker/agent/resources.py): idle after
each start, at the peak of each run with how many jobs ran then, and after its
last job once the background checks settle.  It exits 1 if anything leaked;
the figures are for reading, not a pass/fail (tests/agent/test_agent_resources.py
asserts them).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from condor_docker.agent.resources import Figures, figures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(os.path.dirname(REPO), "shared", "fixtures", "real-pool")
PYTHON = "/opt/condor_docker/venv/bin/python"
GOOD_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
BAD_IMAGE = "127.0.0.1:5000/condor-docker-test/no-such-image:1"
NOBODY = 65534
KINDS = ("ok",) * 7 + ("hog", "bad", "kill")


def set_attrs(text: str, attrs: dict[str, str]) -> str:
    """Replace (or add) `Attr = Value` lines of a fixture ad."""
    for name, value in attrs.items():
        pattern = re.compile(rf"^{name} = .*$", re.MULTILINE)
        line = f"{name} = {value}"
        text = pattern.sub(lambda _m: line, text) if pattern.search(text) else text + line + "\n"
    return text


class Agent:
    """The agent process under test: started, killed -9, restarted."""

    def __init__(self, root: str, cache_size: int, cache_mb: int) -> None:
        self.root = root
        self.socket = os.path.join(root, "run", "agent.sock")
        self.execute = os.path.join(root, "execute")
        self.args = [PYTHON, "-m", "condor_docker.cli", "agent", "--socket", self.socket,
                     "--log", os.path.join(root, "agent.log")]
        for knob, value in {"CONDOR_DOCKER_EXECUTE_DIRS": self.execute,
                            "CONDOR_DOCKER_STATE_DIR": os.path.join(root, "state"),
                            "CONDOR_DOCKER_DEFAULT_NETWORK": "none",
                            "CONDOR_DOCKER_TEST_IMAGE": "condor-docker-test/busybox:local",
                            "DOCKER_IMAGE_CACHE_SIZE": str(cache_size),
                            "CONDOR_DOCKER_IMAGE_CACHE_MB": str(cache_mb),
                            "CONDOR_DOCKER_PULL_STALL_TIMEOUT": "20",
                            "CONDOR_DOCKER_REAP_PERIOD": "10", "CONDOR_DOCKER_REAP_GRACE": "30",
                            # no startd and no condor_starter here: the admin's caps are the slot sizes
                            "CONDOR_DOCKER_SLOT_SOURCE": "caps",
                            "CONDOR_DOCKER_REQUIRE_STARTER": "false"}.items():
            self.args += ["--set", f"{knob}={value}"]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.figures: list[tuple[str, Figures]] = []   # (when, figures), in order
        self.peak: tuple[Figures, int] | None = None     # this run's most threads, with the jobs running then

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=REPO)
        self.process = subprocess.Popen(self.args, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.answers() and time.monotonic() < deadline:  # a killed agent leaves its socket file
            time.sleep(0.1)
        self.starts += 1
        time.sleep(1)   # the first health check and reap
        self.note("idle after start" if self.starts == 1 else f"after restart {self.starts - 1} (reattaching)")

    def now(self) -> Figures:
        assert self.process is not None
        return figures(self.process.pid)

    def note(self, when: str) -> None:
        self.figures.append((when, self.now()))

    def sample(self, running: int) -> None:
        """One sample of a run (for its peak)."""
        try:
            now = self.now()
        except (psutil.Error, OSError):   # killed or restarting
            return
        if self.peak is None or now.threads > self.peak[0].threads:
            self.peak = (now, running)

    def end_of_run(self, when: str, settle: bool = True) -> None:
        if self.peak is not None:
            peak, running = self.peak
            self.figures.append((f"peak, {running} jobs running", peak))
        self.peak = None
        idle = self.figures[0][1] if self.figures else None
        deadline = time.monotonic() + 30   # a finished job's last threads end within a poll period
        while settle and idle is not None and time.monotonic() < deadline and self.now().threads > idle.threads:
            time.sleep(0.5)
        self.note(when)

    def answers(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def kill9(self) -> None:
        assert self.process is not None
        self.end_of_run("just before kill -9", settle=False)   # jobs are running: nothing to settle
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(60)


class Soak:
    def __init__(self, jobs: int, concurrency: int, seed: int, crashes: int = 2) -> None:
        self.jobs = jobs
        self.crashes = crashes
        self.running = 0
        self.concurrency = concurrency
        self.random = random.Random(seed)
        self.root = tempfile.mkdtemp(prefix="condor_docker-soak.")
        os.chmod(self.root, 0o755)
        self.agent = Agent(self.root, cache_size=2, cache_mb=64)
        os.makedirs(self.agent.execute, mode=0o755)
        self.outcomes: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.done = 0
        with open(os.path.join(FIXTURES, "job.ad")) as f:
            self.job_ad = f.read()
        with open(os.path.join(FIXTURES, "machine.ad")) as f:
            self.machine_ad = f.read()

    def scratch(self, number: int, kind: str, slot: str) -> str:
        path = os.path.join(self.agent.execute, f"dir_{number}")
        os.makedirs(path)
        image = BAD_IMAGE if kind == "bad" else GOOD_IMAGE
        args = {"ok": "-c echo' 'ok", "bad": "-c echo' 'never", "kill": "-c sleep' '60",
                "hog": "-c x=0123456789;while' ':;do' 'x=$x$x;done"}[kind]
        job = set_attrs(self.job_ad, {"ClusterId": str(1000 + number), "ProcId": "0",
                                      "DockerImage": json.dumps(image), "Arguments": json.dumps(args),
                                      "Iwd": json.dumps(path), "RequestMemory": "32",
                                      "JobMaxVacateTime": "2"})
        machine = set_attrs(self.machine_ad, {"Memory": "32", "Name": json.dumps(f"{slot}@soak")})
        for name, text in ((".job.ad", job), (".machine.ad", machine)):
            with open(os.path.join(path, name), "w") as f:
                f.write(text)
        for entry in (path, os.path.join(path, ".job.ad"), os.path.join(path, ".machine.ad")):
            os.chown(entry, NOBODY, NOBODY)
        return path

    def run_job(self, number: int, kind: str, slot: str) -> None:
        path = self.scratch(number, kind, slot)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO, "_CONDOR_SCRATCH_DIR": path,
               "_CONDOR_JOB_AD": os.path.join(path, ".job.ad"),
               "_CONDOR_MACHINE_AD": os.path.join(path, ".machine.ad"), "_CONDOR_SLOT": slot,
               "_CONDOR_JOB_IWD": path, "TMPDIR": path}
        with open(os.path.join(path, "_condor_stdout"), "wb") as out, \
                open(os.path.join(path, "_condor_stderr"), "wb") as err:
            os.chown(out.name, NOBODY, NOBODY)
            os.chown(err.name, NOBODY, NOBODY)
            process = subprocess.Popen(
                [PYTHON, "-m", "condor_docker.cli", "launch", "--socket", self.agent.socket],
                cwd=path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                user=NOBODY, group=NOBODY, extra_groups=[])
            if kind == "kill":
                time.sleep(self.random.uniform(1.0, 3.0))
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(300)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        with open(os.path.join(path, "_condor_stderr"), errors="replace") as f:
            stderr = f.read().strip().splitlines()
        ours = [line for line in stderr if line.startswith("condor_docker:") and "cannot report" not in line]
        outcome = self.classify(kind, code, ours[0] if ours else (stderr[-1] if stderr else ""))
        with self.lock:
            self.outcomes[outcome] += 1
            self.done += 1
        shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def classify(kind: str, code: int, last_line: str) -> str:
        if code == 0:
            return "completed"
        if code == 137:
            return "held: over memory"
        if code == 1 and "condor_docker:" in last_line:
            reason = "image not found" if "manifest unknown" in last_line or "not found" in last_line else last_line[15:95]
            return f"held: {reason}"
        if code == 75:
            return f"requeued: {last_line[15:95]}"
        if code < 0:
            return f"killed by signal {-code} ({'expected' if kind == 'kill' else 'UNEXPECTED'})"
        return f"exit {code} for a {kind} job: {last_line[:80]}"

    def run(self) -> int:
        self.agent.start()
        kinds = [self.random.choice(self.kinds) for _ in range(self.jobs)]
        crash_points = [self.jobs * (n + 1) // (self.crashes + 1) for n in range(self.crashes)]
        slots = [f"slot1_{i + 1}" for i in range(self.concurrency)]
        free = list(slots)
        free_lock = threading.Condition()

        def job(number: int) -> None:
            with free_lock:
                while not free:
                    free_lock.wait()
                slot = free.pop()
                self.running += 1
            try:
                self.run_job(number, kinds[number], slot)
            finally:
                with free_lock:
                    free.append(slot)
                    self.running -= 1
                    free_lock.notify()

        started = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(job, n) for n in range(self.jobs)]
            crashed = 0
            while self.done < self.jobs:
                time.sleep(0.5)
                self.agent.sample(self.running)
                if crashed < len(crash_points) and self.done >= crash_points[crashed]:
                    print(f"soak: killing the agent -9 after {self.done} jobs", flush=True)
                    self.agent.kill9()
                    self.agent.start()
                    crashed += 1
            for future in futures:
                future.result()
        self.agent.end_of_run(f"after the last job ({self.jobs} in all)")
        elapsed = time.monotonic() - started
        return self.report(elapsed)

    def report(self, elapsed: float) -> int:
        client = docker.APIClient(version="auto")
        time.sleep(1)
        at_end = self.leftovers(client)
        deadline = time.monotonic() + 45  # one reap grace (30 s) plus a period (10 s), plus slack
        leaked = at_end
        while leaked and time.monotonic() < deadline:
            time.sleep(1)
            leaked = self.leftovers(client)
        self.agent.stop()
        state_file = os.path.join(self.root, "state", "image_cache.json")
        records = json.load(open(state_file))["images"] if os.path.exists(state_file) else {}
        tags = {t: i["Size"] for i in client.images() for t in i.get("RepoTags") or ()}
        ours = [r for r, rec in records.items() if rec.get("pulled") and r in tags]
        over = max(0, len(ours) - self.agent_cache_size) + (sum(tags[r] for r in ours) > 64 * 2 ** 20)
        print(f"soak: {self.done} jobs in {elapsed:.0f} s, concurrency {self.concurrency}")
        for outcome, count in sorted(self.outcomes.items()):
            print(f"  {count:5d}  {outcome}")
        print(f"soak: containers left when the last job ended: {len(at_end)} "
              f"({', '.join(c['Names'][0].lstrip('/') + ' ' + c['State'] for c in at_end)})")
        print(f"soak: containers leaked (still there after one reap cycle): {len(leaked)}")
        print(f"soak: images over the limits: {over}")
        print("soak: the agent's figures (fds, sockets to the engine among them, threads, RSS):")
        for when, figure in self.agent.figures:
            print(f"  {when:<32} {figure.fds:5d} fds {figure.engine_sockets:5d} engine {figure.threads:5d} threads "
                  f"{figure.rss_mb:7.1f} MB")
        for container in leaked:
            client.remove_container(container["Id"], force=True, v=True)
        client.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return 1 if leaked or over else 0

    agent_cache_size = 2
    kinds = KINDS

    def leftovers(self, client) -> list[dict]:
        found = client.containers(all=True, filters={"label": ["org.condor_docker.managed=true"]})
        return [c for c in found
                if (c.get("Labels") or {}).get("org.condor_docker.scratch_dir", "").startswith(self.root)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crashes", type=int, default=2, help="how many times the agent is killed -9 (default 2)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="the job mix to draw from, comma-separated among ok, hog, bad, kill "
                             "(default: 7 ok to 1 each of the others)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("soak: run as root (the launcher runs as nobody, the agent as root)", file=sys.stderr)
        return 2
    soak = Soak(args.jobs, args.concurrency, args.seed, args.crashes)
    soak.kinds = tuple(args.kinds.split(","))
    return soak.run()


if __name__ == "__main__":
    sys.exit(main())
