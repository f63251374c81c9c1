"""Agent-tier fixtures: a real agent (as root), real users, real scratch dirs, the real engine.

Shared with the hook tests; keep the names and signatures:
    engine_up, test_users, execute_dir, make_scratch, agent, agent_factory, run_as
plus helpers used by the agent/launch tests: real_job_ad, launcher_env, fake_chirp.
A session-end check fails the run if any container labelled
org.condor_docker.managed=true is left on the engine.
"""
from __future__ import annotations

import contextlib
import glob
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/opt/condor_docker/venv/bin/python"
from testpaths import CODE_PATH, FIXTURES

REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
LOCAL_IMAGE = "condor-docker-test/busybox:local"
TEST_ROOT = "/var/lib/condor_docker-test"
USERS = ("cdtest1", "cdtest2")
_cluster_ids = itertools.count(int(time.time()) % 100000 * 10)
_CLUSTER_TESTS: dict[int, str] = {}   # ClusterId -> the test that took it (named by the cgroup leak check)


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("agent tests need root (they create users and run the agent)")


def _managed_containers(under: str | None = None) -> list[str]:
    """Ids of managed containers; with `under`, only those whose scratch dir is below it.

    Other test sessions may share the engine (each with its own execute dir), so
    the leak check looks only at this session's containers.
    """
    result = subprocess.run(["docker", "ps", "-a", "--format",
                             '{{.ID}} {{.Label "org.condor_docker.scratch_dir"}}',
                             "--filter", "label=org.condor_docker.managed=true"],
                            capture_output=True, text=True, timeout=30)
    ids = []
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        cid, _, scratch = line.partition(" ")
        if under is None or scratch.startswith(under.rstrip("/") + "/"):
            ids.append(cid)
    return ids


_SESSION_EXECUTE_DIRS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """Fail the run if a managed container of this session is left on the engine (and remove it)."""
    yield
    if os.geteuid() != 0 or shutil.which("docker") is None:
        return
    left = [cid for under in _SESSION_EXECUTE_DIRS for cid in _managed_containers(under)]
    if left:
        subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True, timeout=60)
        pytest.fail(f"managed container(s) left on the engine: {left}")
    cgroups = _leftover_cgroups(_CLUSTER_TESTS)
    if cgroups:
        pytest.fail("per-container cgroup(s) left on the host (removed now): "
                    + "; ".join(f"{path} (from {test})" for path, test in cgroups))


def _leftover_cgroups(clusters: dict[int, str]) -> list[tuple[str, str]]:
    """(path, test) of each `condor_docker/HTCJob_<cluster>_...` cgroup of this session's clusters, removed.

    The agent makes one parent cgroup per container and removes it once the container is
    gone (engine/usage.py); one left behind is a leak, in every hierarchy it was made in.
    """
    found = []
    for base in glob.glob("/sys/fs/cgroup/*/condor_docker") + glob.glob("/sys/fs/cgroup/condor_docker"):
        for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            match = re.match(r"HTCJob_(\d+)_", entry)
            if match and int(match.group(1)) in clusters:
                path = os.path.join(base, entry)
                for inner, _dirs, _files in sorted(os.walk(path), reverse=True):   # children first
                    with contextlib.suppress(OSError):
                        os.rmdir(inner)
                found.append((path, clusters[int(match.group(1))]))
    return found


@pytest.fixture(scope="session")
def engine_up() -> None:
    """The engine, registry and test images (scripts/engine-up.sh, once)."""
    _require_root()
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "engine-up.sh")],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"the test engine did not come up: {result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def test_users() -> dict[str, tuple[int, int]]:
    """Two real users with no login shell and no home, created idempotently: {name: (uid, gid)}."""
    _require_root()
    import pwd

    users = {}
    for name in USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                            "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True)
            entry = pwd.getpwnam(name)
        users[name] = (entry.pw_uid, entry.pw_gid)
    return users


@pytest.fixture(scope="session")
def execute_dir() -> str:
    """A root-owned 0755 execute dir (HTCondor's EXECUTE), removed at the end."""
    _require_root()
    os.makedirs(TEST_ROOT, 0o755, exist_ok=True)
    path = tempfile.mkdtemp(prefix="execute-", dir=TEST_ROOT)
    os.chmod(path, 0o755)
    _SESSION_EXECUTE_DIRS.append(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _set_attrs(text: str, attrs: dict[str, str]) -> str:
    """Replace (or append) `Attr = Value` lines; values are ClassAd text."""
    lines = text.splitlines()
    wanted = {name.lower(): (name, value) for name, value in attrs.items()}
    out = []
    for line in lines:
        name = line.split("=", 1)[0].strip().lower()
        if name in wanted:
            attr, value = wanted.pop(name)
            out.append(f"{attr} = {value}")
        else:
            out.append(line)
    out += [f"{attr} = {value}" for attr, value in wanted.values()]
    return "\n".join(out) + "\n"


def _classad(value: Any) -> str:
    from condor_docker.core.ads import format_value

    return format_value(value)


@pytest.fixture
def real_job_ad(request) -> Callable[..., str]:
    """The real pool's .job.ad with the test image, network none, a fresh ClusterId, and overrides.

    Keyword values are Python values (formatted as ClassAd literals); e.g.
    real_job_ad(Arguments="-c 'exit 3'", JobMaxVacateTime=2).
    """
    def build(**attrs: Any) -> str:
        with open(os.path.join(FIXTURES, "job.ad")) as stream:
            text = stream.read()
        cluster = next(_cluster_ids)
        _CLUSTER_TESTS[cluster] = request.node.nodeid
        base = {"DockerImage": _classad(REGISTRY_IMAGE), "DockerNetworkType": _classad("none"),
                "ClusterId": str(cluster)}
        base.update({name: _classad(value) for name, value in attrs.items()})
        return _set_attrs(text, base)
    return build


@pytest.fixture
def make_scratch(execute_dir, test_users, real_job_ad):
    """Factory: make_scratch(user, job_ad_text=None, machine_ad_text=None) -> path of a new scratch dir.

    `<execute_dir>/dir_<n>`, owned by the user, mode 0700, with .job.ad and
    .machine.ad (defaults: the real pool's files with the test image, network
    none and a fresh ClusterId).  Removed after the test.
    """
    made: list[str] = []

    def make(user: str, job_ad_text: str | None = None, machine_ad_text: str | None = None) -> str:
        uid, gid = test_users[user]
        path = tempfile.mkdtemp(prefix="dir_", dir=execute_dir)
        made.append(path)
        if machine_ad_text is None:
            with open(os.path.join(FIXTURES, "machine.ad")) as stream:
                machine_ad_text = stream.read()
        for name, text in ((".job.ad", job_ad_text or real_job_ad()), (".machine.ad", machine_ad_text)):
            target = os.path.join(path, name)
            with open(target, "w") as stream:
                stream.write(text)
            os.chown(target, uid, gid)
            os.chmod(target, 0o644)
        os.chown(path, uid, gid)
        os.chmod(path, 0o700)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def run_as_user(uid: int, gid: int, argv: list[str], **popen_kwargs: Any) -> subprocess.Popen:
    """Start argv as uid/gid (no supplementary groups)."""
    return subprocess.Popen(argv, user=uid, group=gid, extra_groups=[], **popen_kwargs)


@pytest.fixture
def run_as(test_users):
    """run_as(user, argv, **popen_kwargs) -> Popen of argv as that test user; killed after the test."""
    started: list[subprocess.Popen] = []

    def run(user: str, argv: list[str], **popen_kwargs: Any) -> subprocess.Popen:
        uid, gid = test_users[user]
        process = run_as_user(uid, gid, argv, **popen_kwargs)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@dataclass
class AgentProcess:
    """A real `condor_docker agent` as root on a private socket."""
    socket: str
    log_path: str
    state_dir: str
    knobs: dict[str, str]
    process: subprocess.Popen | None = None
    stderr_path: str = ""
    generations: list[subprocess.Popen] = field(default_factory=list)

    def argv(self) -> list[str]:
        argv = [PYTHON, "-m", "condor_docker.cli", "agent", "--socket", self.socket, "--log", self.log_path]
        for name, value in self.knobs.items():
            argv += ["--set", f"{name}={value}"]
        return argv

    def start(self, wait_healthy: bool = True) -> None:
        env = dict(os.environ, PYTHONPATH=CODE_PATH)
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(self.argv(), env=env, stdin=subprocess.DEVNULL,
                                            stdout=err, stderr=err)
        self.generations.append(self.process)
        self.wait_ready(wait_healthy)

    def call(self, op: str, **fields: Any) -> dict:
        from condor_docker.wire.protocol import AgentClient

        return AgentClient(self.socket, timeout=30).call(op, **fields)

    def wait_ready(self, healthy: bool = True, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"agent exited with {self.process.returncode}: {self.log_tail()}")
            try:
                last = self.call("ping")
                if last.get("ok") and (last.get("healthy") or not healthy):
                    return last
            except Exception as err:  # not up yet
                last = err
            time.sleep(0.2)
        raise RuntimeError(f"agent not ready after {timeout} s: {last}; {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        text = ""
        for path in (self.log_path, self.stderr_path):
            if os.path.exists(path):
                with open(path, errors="replace") as stream:
                    text += stream.read()
        return text

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@pytest.fixture
def agent_factory(engine_up, execute_dir, test_users):
    """agent_factory(**knobs) -> a started AgentProcess with the test knobs plus overrides.

    It waits for `ping` to say healthy, unless wait_healthy=False (e.g. a broken engine URL).
    """
    agents: list[AgentProcess] = []
    roots: list[str] = []

    def factory(wait_healthy: bool = True, **knobs: Any) -> AgentProcess:
        run_dir = f"/run/condor_docker-test-{secrets.token_hex(4)}"
        state_dir = tempfile.mkdtemp(prefix="agent-state-", dir=TEST_ROOT)
        roots.extend([run_dir, state_dir])
        settings = {
            "CONDOR_DOCKER_EXECUTE_DIRS": execute_dir,
            "CONDOR_DOCKER_DEFAULT_NETWORK": "none",
            "CONDOR_DOCKER_STATE_DIR": state_dir,
            "CONDOR_DOCKER_TEST_IMAGE": LOCAL_IMAGE,
            "DOCKER_TRUST_LOCAL_IMAGES": "false",
            "CONDOR_DOCKER_HEALTH_PERIOD": "5",
            "CONDOR_DOCKER_REAP_PERIOD": "5",
            "CONDOR_DOCKER_REAP_GRACE": "30",
            # the emulated starter has no startd beside it: the admin's caps are the trusted sizes
            # (with the default, `startd`, a silent startd sends the job back to idle: fail closed)
            "CONDOR_DOCKER_SLOT_SOURCE": "caps",
            "CONDOR_DOCKER_REQUIRE_STARTER": "false",   # the emulated starter is not a condor_starter
        }
        settings.update({name: str(value) for name, value in knobs.items()})
        agent = AgentProcess(os.path.join(run_dir, "agent.sock"), os.path.join(state_dir, "CondorDockerLog"),
                             state_dir, settings, stderr_path=os.path.join(state_dir, "agent.stderr"))
        agents.append(agent)
        agent.start(wait_healthy)
        return agent

    yield factory
    for agent in agents:
        agent.stop()
        for process in agent.generations:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    for path in roots:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent(agent_factory) -> AgentProcess:
    """A started agent with the test knobs."""
    return agent_factory()


# -- a fake Chirp server --------------------------------------------------------------------
def _chirp_words(line: str) -> list[str]:
    """Split a Chirp command line on unescaped spaces, undoing htchirp.quote()."""
    words, current, escaped = [], "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == " ":
            words.append(current)
            current = ""
        else:
            current += char
    words.append(current)
    return words


class FakeChirp:
    """Speaks the few Chirp lines htchirp sends: `cookie <c>`, then `set_job_attr_delayed <name> <expr>`."""

    def __init__(self) -> None:
        self.cookie = secrets.token_hex(8)
        self.attributes: dict[str, str] = {}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def write_config(self, directory: str, uid: int, gid: int) -> str:
        path = os.path.join(directory, ".chirp.config")
        with open(path, "w") as stream:
            stream.write(f"127.0.0.1 {self.port} {self.cookie}\n")
        os.chown(path, uid, gid)
        os.chmod(path, 0o600)
        return path

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        authenticated = False
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                words = _chirp_words(raw.decode().rstrip("\n"))
                if words[0] == "cookie":
                    authenticated = len(words) == 2 and words[1] == self.cookie
                    conn.sendall(b"0\n" if authenticated else b"-1\n")
                elif not authenticated:
                    conn.sendall(b"-1\n")
                elif words[0] == "set_job_attr_delayed" and len(words) == 3:
                    self.attributes[words[1]] = words[2]
                    conn.sendall(b"0\n")
                else:
                    conn.sendall(b"-8\n")

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def fake_chirp():
    server = FakeChirp()
    yield server
    server.close()


@pytest.fixture
def launcher_env():
    """launcher_env(scratch, **extra) -> the starter's environment for the launcher (per the contract)."""
    def build(scratch: str, **extra: str) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": CODE_PATH,
            "_CONDOR_SCRATCH_DIR": scratch,
            "_CONDOR_JOB_AD": os.path.join(scratch, ".job.ad"),
            "_CONDOR_MACHINE_AD": os.path.join(scratch, ".machine.ad"),
            "_CONDOR_JOB_IWD": scratch,
            "_CONDOR_SLOT": "slot1_1",
            "_CONDOR_CHIRP_CONFIG": os.path.join(scratch, ".chirp.config"),
            "_CHIRP_DELAYED_UPDATE_PREFIX": "Chirp*",
            "CONDOR_STARTER_PID": str(os.getpid()),
            "TMPDIR": "/tmp",
            "OMP_NUM_THREADS": "1",
        }
        env.update(extra)
        return env
    return build


@dataclass
class LaunchedJob:
    process: subprocess.Popen
    scratch: str
    out_path: str
    err_path: str

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def stdout(self) -> str:
        with open(self.out_path, errors="replace") as stream:
            return stream.read()

    def stderr(self) -> str:
        with open(self.err_path, errors="replace") as stream:
            return stream.read()


@pytest.fixture
def start_launcher(run_as, launcher_env, test_users):
    """start_launcher(agent, scratch, user="cdtest1") -> LaunchedJob: `condor_docker launch` as the user.

    Its stdout/stderr are files in the scratch dir created by the user (as the
    starter would), its stdin /dev/null, its env the starter's.
    """
    def start(agent: AgentProcess, scratch: str, user: str = "cdtest1", **env: str) -> LaunchedJob:
        uid, gid = test_users[user]
        paths = []
        for name in ("_condor_stdout", "_condor_stderr"):
            path = os.path.join(scratch, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.fchown(fd, uid, gid)
            os.close(fd)
            paths.append(path)
        with open(paths[0], "ab") as out, open(paths[1], "ab") as err:
            process = run_as(user, [PYTHON, "-m", "condor_docker.cli", "launch", "--socket", agent.socket],
                             cwd=scratch, env=launcher_env(scratch, **env), stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err)
        return LaunchedJob(process, scratch, paths[0], paths[1])
    return start


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true after {timeout} s: {what}")


@pytest.fixture
def managed_containers(execute_dir):
    """() -> {name: inspect} of this session's managed containers on the engine (docker CLI, no SDK)."""
    def listing() -> dict[str, dict]:
        import json

        ids = _managed_containers(execute_dir)
        if not ids:
            return {}
        result = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=30)
        found = json.loads(result.stdout or "[]")
        return {c["Name"].lstrip("/"): c for c in found}
    return listing


@pytest.fixture
def wait_until():
    """wait_until(predicate, timeout, what) -> the predicate's first true value, or AssertionError."""
    return wait_for
