"""A real HTCondor personal pool on loopback, with condor_docker installed as an admin would.

`Pool.create(install_dir, checkout)` makes a root-owned 0755 state dir, pip-installs
the checkout into a venv there (dependencies come from the project venv through a
.pth file, so the install takes seconds and needs no network), copies the shipped
config.d files into the pool's LOCAL_CONFIG_DIR, adds a later file with the few
knobs a test pool must override (socket and state under the pool's dir, network
none, the self-test image), and starts condor_master on a free port of 127.0.0.1.
The pool's own knob values for the project come from the shipped files: a bug there
shows up here exactly as it would for a site admin.

Everything runs as it does on a site: the daemons as root dropping to `condor`,
the agent as root under condor_master (DAEMON_LIST), the startd cron as `condor`,
jobs submitted by real unprivileged users with condor_submit.

API used by other test modules (keep it stable):
    Pool.env, .release_dir, .local_dir, .execute_dir, .log_dir, .config_dir, .root
    Pool.condor(*argv, user=None, check=True, timeout=60, input=None) -> CompletedProcess
    Pool.submit(submit_text, user="cdtest1", files=None) -> Job(.cluster, .dir, .user, .count)
    Pool.submit_dir(user="cdtest1") -> a fresh dir of the user's, nothing submitted
    Pool.wait(job, until="done"|"held"|"running"|"idle", timeout=180) -> classad2.ClassAd (proc 0)
    Pool.ad(job, proc=0) -> classad2.ClassAd ; Pool.ads(job) -> list of ads, by proc
    Pool.rm(job) ; Pool.slot_ad() ; Pool.write_config(name, text) / .remove_config(name)
    Pool.agent_log(), .starter_logs(), .log(name), .reconfig(), .managed_containers()
    Pool.stop() ; Pool.leftovers() -> list of what is left behind (empty when clean)
"""
from __future__ import annotations

import glob
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import classad2

REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
LOCAL_IMAGE = "condor-docker-test/busybox:local"
TEST_ROOT = "/var/lib/condor_docker-test"
PROJECT_VENV = "/opt/condor_docker/venv"
SYSTEM_PYTHON = "/usr/bin/python3"

# JobStatus values (HTCondor's)
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
_WANTED = {"idle": IDLE, "running": RUNNING, "done": COMPLETED, "held": HELD}
_STATE_NAMES = {1: "idle", 2: "running", 3: "removed", 4: "done", 5: "held", 6: "transferring output",
                7: "suspended"}


class PoolError(RuntimeError):
    """The pool could not be set up or started; the message says what and where to look."""


@dataclass
class Job:
    """One submitted cluster: its id, the submit dir (owned by the user) and how many procs it has."""
    cluster: int
    dir: str
    user: str
    count: int = 1

    @property
    def id(self) -> str:
        return f"{self.cluster}.0"


def cluster_submit(count: int, command: str, image: str = REGISTRY_IMAGE, network: str | None = None) -> str:
    """A docker-universe cluster of `count` jobs running `sh -c command`, one out/err file per proc."""
    network_line = f"docker_network_type = {network}\n" if network else ""
    return f"""\
universe = docker
docker_image = {image}
{network_line}executable = /bin/sh
arguments = "-c '{command}'"
transfer_executable = false
should_transfer_files = YES
output = out.$(Process).txt
error = err.$(Process).txt
log = job.log
request_memory = 32M
queue {count}
"""


def free_port() -> int:
    """A port free on 127.0.0.1 now (other pools may run beside this one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as stream:
            return stream.read()
    except OSError:
        return ""


def base_config(pool: "Pool", port: int) -> str:
    """The personal-pool config from shared/htcondor/README.md, with this pool's paths."""
    condor = pwd.getpwnam("condor")
    return f"""\
# condor_docker pool tests: a personal pool on loopback (see tests/htcondor_pool/poolfixture.py)
RELEASE_DIR = {pool.release_dir}
LOCAL_DIR = {pool.local_dir}
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
LOCAL_CONFIG_DIR = {pool.config_dir}
use ROLE: Personal
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = $(CONDOR_HOST):{port}
SHARED_PORT_PORT = {port}
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
UID_DOMAIN = localhost
FILESYSTEM_DOMAIN = localhost
TRUST_DOMAIN = 127.0.0.1
CONDOR_IDS = {condor.pw_uid}.{condor.pw_gid}
use security:recommended
SCHEDD_INTERVAL = 5
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 5
STARTER_UPDATE_INTERVAL = 5
# the shadow passes the starter's figures (ResidentSetSize, RemoteUserCpu, ...) on to the
# schedd only every SHADOW_QUEUE_UPDATE_INTERVAL (HTCondor's default 900 s) and at job end
SHADOW_QUEUE_UPDATE_INTERVAL = 5
# cluster ids of their own: containers are named HTCJob_<cluster>_<proc>_<slot>_u<uid>, and
# pools of other sessions on this shared engine would otherwise use the same small ids
SCHEDD_CLUSTER_INITIAL_VALUE = {random.randint(1000, 999999)}
UPDATE_INTERVAL = 5
RUNBENCHMARKS = 0
NUM_SLOTS = 1
NUM_SLOTS_TYPE_1 = 1
SLOT_TYPE_1 = 100%
SLOT_TYPE_1_PARTITIONABLE = True
START = True
SUSPEND = False
PREEMPT = False
KILL = False
LINUX_KERNEL_TUNING_SCRIPT =
"""


def test_overrides(pool: "Pool") -> str:
    """What a test pool must set differently from a site (a file sorting after the shipped ones).

    Only machine facts: where the venv is, a socket and state dir private to this
    pool, network none (the test engine has no bridge).  The self-test runs with the
    shipped default, the built-in image.  Nothing here may hide a bug in the shipped files.
    """
    return f"""\
# condor_docker pool tests: this pool's own paths (sorts after 50-condor_docker-*.conf)
CONDOR_DOCKER_PREFIX = {pool.venv}
CONDOR_DOCKER_AGENT_SOCKET = {pool.agent_dir}/agent.sock
CONDOR_DOCKER_DEFAULT_NETWORK = none
CONDOR_DOCKER_REAP_GRACE = 120
"""


@dataclass
class Pool:
    """A running personal pool; create with Pool.create(), stop with .stop()."""
    root: str
    release_dir: str
    checkout: str
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    has_docker_after: float | None = None   # seconds from startd start to HasDocker = true
    native_docker: str | None = None         # HTCondor's own docker universe instead of ours

    # -- layout ---------------------------------------------------------------------------
    @property
    def local_dir(self) -> str:
        return os.path.join(self.root, "local")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.local_dir, "log")

    @property
    def execute_dir(self) -> str:
        return os.path.join(self.local_dir, "execute")

    @property
    def config_dir(self) -> str:
        return os.path.join(self.root, "config.d")

    @property
    def config_file(self) -> str:
        return os.path.join(self.root, "condor_config")

    @property
    def venv(self) -> str:
        return os.path.join(self.root, "venv")

    @property
    def agent_dir(self) -> str:
        return os.path.join(self.root, "agent")

    @property
    def agent_socket(self) -> str:
        return os.path.join(self.agent_dir, "agent.sock")

    @property
    def submit_root(self) -> str:
        return os.path.join(self.root, "submit")

    # -- set up ---------------------------------------------------------------------------
    @classmethod
    def create(cls, release_dir: str, checkout: str, start: bool = True,
               native_docker: str | None = None) -> "Pool":
        """Lay out, install and (by default) start a pool; on any failure nothing is left.

        With `native_docker` (the docker CLI's path) the pool is the comparison:
        HTCondor's own docker universe (DOCKER = that path), without condor_docker.
        """
        os.makedirs(TEST_ROOT, 0o755, exist_ok=True)
        root = tempfile.mkdtemp(prefix="pool-native-" if native_docker else "pool-", dir=TEST_ROOT)
        os.chmod(root, 0o755)
        pool = cls(root=root, release_dir=release_dir, checkout=checkout, native_docker=native_docker)
        try:
            pool._layout()
            if native_docker:
                pool._write_native_config(native_docker)
            else:
                pool._install_project()
                pool._write_config()
            if start:
                pool.start()
        except BaseException:
            pool.stop()
            pool.destroy()
            raise
        return pool

    def _layout(self) -> None:
        condor = pwd.getpwnam("condor")
        for name in ("log", "spool", "execute", "lock", "run"):
            path = os.path.join(self.local_dir, name)
            os.makedirs(path, 0o755)
            os.chown(path, condor.pw_uid, condor.pw_gid)
            os.chmod(path, 0o755)
        os.chmod(self.local_dir, 0o755)
        for path in (self.config_dir, self.agent_dir, self.submit_root):
            os.makedirs(path, 0o755)
            os.chmod(path, 0o755)
        path_dirs = [os.path.join(self.release_dir, "bin"), os.path.join(self.release_dir, "sbin"),
                     "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        self.env = {"CONDOR_CONFIG": self.config_file, "PATH": ":".join(path_dirs), "LANG": "C.UTF-8"}

    def _install_project(self) -> None:
        """pip install the checkout into a venv every account can read, as docs/INSTALL-EXECUTE-POINT.md says.

        A copy of the sources is built (never the checkout itself, which other
        sessions may be building too); dependencies come from the project venv.
        """
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", self.venv], check=True,
                       capture_output=True, timeout=120)
        site = subprocess.run([os.path.join(self.venv, "bin", "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        deps = subprocess.run([os.path.join(PROJECT_VENV, "bin", "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(site, "zz_condor_docker_deps.pth"), "w") as stream:
            stream.write(deps + "\n")
        source = tempfile.mkdtemp(prefix="src-", dir=self.root)
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            if os.path.exists(os.path.join(self.checkout, name)):
                shutil.copy(os.path.join(self.checkout, name), source)
        shutil.copytree(os.path.join(self.checkout, "condor_docker"), os.path.join(source, "condor_docker"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        result = subprocess.run([os.path.join(PROJECT_VENV, "bin", "python"), "-m", "pip", "--python",
                                 os.path.join(self.venv, "bin", "python"), "install", "-q",
                                 "--disable-pip-version-check", "--no-deps", "--no-build-isolation", source],
                                capture_output=True, text=True, timeout=300)
        shutil.rmtree(source, ignore_errors=True)
        if result.returncode != 0:
            raise PoolError(f"pip install of the checkout failed: {result.stderr[-2000:]}")
        subprocess.run(["chmod", "-R", "a+rX,go-w", self.venv], check=True)

    def _write_config(self) -> None:
        self.port = free_port()
        with open(self.config_file, "w") as stream:
            stream.write(base_config(self, self.port))
        for name in sorted(os.listdir(os.path.join(self.checkout, "config.d"))):
            if name.endswith(".conf"):
                shutil.copy(os.path.join(self.checkout, "config.d", name), self.config_dir)
        self.write_config("90-pool-test.conf", test_overrides(self))

    def _write_native_config(self, docker_cli: str) -> None:
        self.port = free_port()
        with open(self.config_file, "w") as stream:
            stream.write(base_config(self, self.port))
        self.write_config("50-htcondor-docker.conf", f"DOCKER = {docker_cli}\n")

    def write_config(self, name: str, text: str) -> str:
        """Add (or replace) a file in the LOCAL_CONFIG_DIR; call .reconfig() to apply it."""
        path = os.path.join(self.config_dir, name)
        with open(path, "w") as stream:
            stream.write(text)
        os.chmod(path, 0o644)
        return path

    def remove_config(self, name: str) -> None:
        path = os.path.join(self.config_dir, name)
        if os.path.exists(path):
            os.unlink(path)

    # -- run ------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        """Start condor_master; wait for the startd's slot ad and record when HasDocker became true."""
        self.started_at = time.time()
        result = subprocess.run(["condor_master"], env=self.env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PoolError(f"condor_master failed: {result.stderr}")
        slot = self.wait_for(lambda: self._slot_ad(), timeout, "the startd's slot ad in the collector")
        start_time = float(slot.get("DaemonStartTime", self.started_at))
        try:
            self.wait_for(lambda: (self._slot_ad() or {}).get("HasDocker") is True, timeout,
                          "HasDocker = true in the slot ad")
        except AssertionError:
            if self.native_docker:
                raise PoolError(f"HTCondor's own docker universe found no engine: "
                                f"{_tail(_read(os.path.join(self.log_dir, 'StartLog')))}") from None
            raise PoolError(f"HasDocker never became true: {self._slot_ad()}\n"
                            f"agent log:\n{_tail(self.agent_log())}\nStartLog:\n"
                            f"{_tail(_read(os.path.join(self.log_dir, 'StartLog')))}") from None
        self.has_docker_after = time.time() - start_time

    def _slot_ad(self) -> classad2.ClassAd | None:
        result = self.condor("condor_status", "-l", "-pool", f"127.0.0.1:{self.port}", check=False, timeout=20)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        ads = list(classad2.parseAds(result.stdout, classad2.ParserType.Old))
        return ads[0] if ads else None

    def slot_ad(self) -> classad2.ClassAd:
        ad = self._slot_ad()
        assert ad is not None, "no slot ad in the collector"
        return ad

    def condor(self, *argv: str, user: str | None = None, check: bool = True, timeout: float = 60,
               input: str | bytes | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run an HTCondor tool (or any command) with the pool's environment, as root or as `user`."""
        command = list(argv)
        if user is not None:
            command = ["runuser", "-u", user, "--", "env", "-i",
                       *(f"{k}={v}" for k, v in self.env.items()), *command]
        text = not isinstance(input, bytes)
        result = subprocess.run(command, env=self.env, capture_output=True, text=text, input=input,
                                timeout=timeout, cwd=cwd)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def submit_dir(self, user: str = "cdtest1") -> str:
        """A fresh submit dir owned by `user` (0755), nothing submitted from it yet."""
        entry = pwd.getpwnam(user)
        directory = tempfile.mkdtemp(prefix=f"{user}-", dir=self.submit_root)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        os.chmod(directory, 0o755)
        return directory

    def submit(self, submit_text: str, user: str = "cdtest1", files: dict[str, str | bytes] | None = None) -> Job:
        """condor_submit as `user` from a fresh submit dir holding `files` (*.sh get mode 0755)."""
        entry = pwd.getpwnam(user)
        directory = self.submit_dir(user)
        for name, content in dict(files or {}, **{"job.sub": submit_text}).items():
            path = os.path.join(directory, name)
            with open(path, "wb") as stream:
                stream.write(content.encode() if isinstance(content, str) else content)
            os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(path, 0o755 if name.endswith(".sh") else 0o644)
        result = self.condor("condor_submit", "job.sub", user=user, cwd=directory)
        found = re.search(r"(\d+) job\(s\) submitted to cluster (\d+)\.", result.stdout)
        assert found, f"cannot read the cluster from condor_submit: {result.stdout}{result.stderr}"
        return Job(cluster=int(found.group(2)), dir=directory, user=user, count=int(found.group(1)))

    def ads(self, job: Job) -> list[classad2.ClassAd]:
        """The job ads of every proc of the cluster, from the queue or else from the history."""
        found: dict[int, classad2.ClassAd] = {}
        for tool in ("condor_q", "condor_history"):
            result = self.condor(tool, "-l", str(job.cluster), check=False, timeout=60)
            if result.returncode == 0 and result.stdout.strip():
                for ad in classad2.parseAds(result.stdout, classad2.ParserType.Old):
                    if ad.get("ClusterId") == job.cluster:
                        found.setdefault(int(ad.get("ProcId", 0)), ad)
            if len(found) >= job.count:
                break
        return [found[proc] for proc in sorted(found)]

    def ad(self, job: Job, proc: int = 0) -> classad2.ClassAd:
        for ad in self.ads(job):
            if ad.get("ProcId") == proc:
                return ad
        raise AssertionError(f"job {job.cluster}.{proc} is neither in the queue nor in the history")

    def wait(self, job: Job, until: str = "done", timeout: float = 180) -> classad2.ClassAd:
        """Wait until every proc of the cluster is in state `until`; return proc 0's ad.

        Fails at once when a proc reaches a final state other than the one wanted
        (held while waiting for done, done while waiting for held, removed), with
        the hold reason, the agent's log and the starter's log in the message.
        """
        wanted = _WANTED[until]
        deadline = time.monotonic() + timeout
        ads: list[classad2.ClassAd] = []
        while time.monotonic() < deadline:
            ads = self.ads(job)
            states = [ad.get("JobStatus") for ad in ads]
            if len(ads) == job.count and all(state == wanted for state in states):
                return ads[0]
            final = {REMOVED, COMPLETED, HELD} - {wanted}
            if wanted in (COMPLETED, HELD) and any(state in final for state in states):
                break
            time.sleep(0.5)
        raise AssertionError(self.explain(job, until, ads))

    def explain(self, job: Job, until: str, ads: list[classad2.ClassAd] | None = None) -> str:
        ads = self.ads(job) if ads is None else ads
        lines = [f"job {job.cluster} ({job.count} procs) did not reach '{until}':"]
        for ad in ads:
            lines.append(f"  {ad.get('ClusterId')}.{ad.get('ProcId')}: "
                         f"{_STATE_NAMES.get(ad.get('JobStatus'), ad.get('JobStatus'))} "
                         f"HoldReasonCode={ad.get('HoldReasonCode')} HoldReasonSubCode={ad.get('HoldReasonSubCode')} "
                         f"HoldReason={ad.get('HoldReason')!r} ExitCode={ad.get('ExitCode')}")
        lines += ["--- agent log (tail):", _tail(self.agent_log()),
                  "--- starter logs (tail):", _tail(self.starter_logs(), 30)]
        return "\n".join(lines)

    def rm(self, job: Job, timeout: float = 60) -> None:
        """condor_rm the cluster (e.g. a held job) and wait until it has left the queue."""
        self.condor("condor_rm", str(job.cluster), check=False)
        self.wait_for(lambda: not self.condor("condor_q", str(job.cluster), "-af", "ProcId",
                                              check=False).stdout.strip(),
                      timeout, f"job {job.cluster} gone from the queue after condor_rm")

    def wait_for(self, predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"not true after {timeout} s: {what}")

    def restart_startd(self, name_prefix: str = "slot", timeout: float = 120) -> classad2.ClassAd:
        """condor_restart -startd; wait for the new startd's slot ad (named `name_prefix`...) with HasDocker."""
        started = time.time() - 1

        def restarted() -> classad2.ClassAd | None:
            ad = self._slot_ad()
            if ad is None or not str(ad.get("Name", "")).startswith(name_prefix):
                return None
            return ad if ad.get("HasDocker") is True and float(ad.get("DaemonStartTime", 0)) > started else None

        self.condor("condor_restart", "-startd")
        return self.wait_for(restarted, timeout, f"a restarted startd's slot named {name_prefix}... with HasDocker")

    def reconfig(self, settle: float = 3.0) -> None:
        """condor_reconfig the whole pool (after changing files in config_dir)."""
        self.condor("condor_reconfig")
        time.sleep(settle)

    # -- looking inside -------------------------------------------------------------------
    def agent_log(self) -> str:
        return _read(os.path.join(self.log_dir, "CondorDockerLog"))

    def starter_logs(self) -> str:
        names = sorted(n for n in os.listdir(self.log_dir) if n.startswith("StarterLog"))
        return "".join(f"==> {name} <==\n{_read(os.path.join(self.log_dir, name))}" for name in names)

    def log(self, name: str) -> str:
        return _read(os.path.join(self.log_dir, name))

    def scratch_dirs(self, cluster: int | None = None) -> list[str]:
        """The running jobs' scratch dirs, in either starter layout: 25.0 `dir_<pid>`, 25.13 `dir_<pid>/scratch`.

        With `cluster`, only the dirs whose .job.ad names that ClusterId: cases run at once in
        one pool, and a file one job wrote must not stand for another job's progress.
        """
        found = []
        for job_dir in sorted(glob.glob(os.path.join(self.execute_dir, "dir_*"))):
            nested = os.path.join(job_dir, "scratch")
            scratch = nested if os.path.isdir(nested) else job_dir
            if cluster is None or _ad_cluster(os.path.join(scratch, ".job.ad")) == cluster:
                found.append(scratch)
        return found

    def managed_containers(self) -> list:
        """Containers of this pool labelled org.condor_docker.managed=true (docker SDK)."""
        import docker

        client = docker.from_env(timeout=30)
        try:
            # Low-level listing, then get() each: the engine is shared, and a container of
            # another session may go away between the two (containers.list() would raise).
            listed = client.api.containers(all=True, filters={"label": "org.condor_docker.managed=true"})
            prefix = self.execute_dir.rstrip("/") + "/"
            mine = []
            for entry in listed:
                if not ((entry.get("Labels") or {}).get("org.condor_docker.scratch_dir") or "").startswith(prefix):
                    continue
                try:
                    mine.append(client.containers.get(entry["Id"]))
                except docker.errors.NotFound:
                    continue
            return mine
        finally:
            client.close()

    def processes(self) -> list:
        """Processes of this pool: those whose environment holds our CONDOR_CONFIG, or under our root."""
        import psutil

        mine = []
        for pid in psutil.pids():   # a process may end at any point of this walk: it is then not ours
            try:
                if pid == os.getpid():
                    continue
                process = psutil.Process(pid)
                cmdline = process.cmdline()
                process.info = {"pid": pid, "cmdline": cmdline}
                if process.environ().get("CONDOR_CONFIG") == self.config_file or \
                        any(self.root in arg for arg in cmdline or ()):
                    mine.append(process)
            except (psutil.Error, OSError):
                continue
        return mine

    # -- tear down ------------------------------------------------------------------------
    def stop(self, timeout: float = 60) -> list[str]:
        """condor_off -fast -master, wait for every process of this pool to end; returns what had to be killed."""
        killed: list[str] = []
        if os.path.exists(self.config_file):
            self.condor("condor_off", "-fast", "-master", check=False, timeout=30)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.processes():
                time.sleep(0.5)
            for process in self.processes():
                killed.append(f"{process.pid} {' '.join(process.cmdline())}")
                try:
                    process.send_signal(signal.SIGKILL)
                except Exception:
                    pass
        return killed

    def leftovers(self) -> list[str]:
        """What this pool left behind that it should not have: containers, processes, scratch dirs."""
        left = [f"container {c.name}" for c in self.managed_containers()]
        left += [f"process {p.pid} {' '.join(p.cmdline())}" for p in self.processes()]
        if os.path.isdir(self.execute_dir):
            left += [f"scratch dir {os.path.join(self.execute_dir, n)}" for n in os.listdir(self.execute_dir)]
        return left

    def destroy(self) -> None:
        """Remove the pool's containers, then its state dir (after stop()).

        Its agent reaps its own containers, but not when the engine went away under a
        running pool and came back after the pool stopped: nothing of this pool is left
        to reap them then (nine exited sleepers of a bench run stayed on the engine so).
        """
        try:
            for container in self.managed_containers():
                container.remove(force=True, v=True)
        except Exception as err:   # an engine that is down: say so, still remove the state dir
            print(f"pool {self.root}: cannot remove its containers: {err}", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)


def find_htcondors(checkout: str) -> tuple[list[str], str]:
    """(install dirs, oldest version first; why none): scripts/htcondor-up.sh finds, unpacks, readies them."""
    result = subprocess.run(["bash", os.path.join(checkout, "scripts", "htcondor-up.sh")],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        return [], (result.stderr.strip() or f"scripts/htcondor-up.sh exited {result.returncode}")
    return result.stdout.strip().splitlines(), ""


def find_htcondor(checkout: str) -> tuple[str | None, str]:
    """(the newest install dir, why not): for a pool by hand and the benchmark."""
    installs, why = find_htcondors(checkout)
    return (installs[-1] if installs else None), why


def series_of(install: str) -> str:
    """`25.0.13` from `/opt/condor_docker/htcondor-25.0.13` (a test id), else the dir's name."""
    name = os.path.basename(os.path.normpath(install))
    return name[len("htcondor-"):] if name.startswith("htcondor-") else name


if __name__ == "__main__":   # a pool by hand: python tests/htcondor_pool/poolfixture.py  (Ctrl-C or kill PID stops it)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    install, why = find_htcondor(here)
    if install is None:
        sys.exit(why)
    pool = Pool.create(install, here)
    print(f"CONDOR_CONFIG={pool.config_file} PATH={pool.env['PATH']}; HasDocker after {pool.has_docker_after:.1f} s")
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # kill PID stops the pool too
    signal.signal(signal.SIGINT, signal.default_int_handler)    # even when started with &
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        print("killed:", pool.stop())
        pool.destroy()


def _ad_cluster(path: str) -> int | None:
    """ClusterId of the job ad at `path` (classad2), None while the starter has not written it."""
    import classad2

    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            ad = classad2.parseOne(stream.read(), parser=classad2.ParserType.Old)
        return int(ad.eval("ClusterId"))
    except (OSError, ValueError, TypeError, KeyError, classad2.ClassAdException):
        return None
