"""Is the engine usable right now?  (Nomad's `fingerprint.go`, in shape.)

HTCondor detects Docker only when the startd starts or reconfigures, so an
engine that dies later is still advertised with `HasDocker = true` and jobs
match a machine that cannot run them.  The agent checks every
CONDOR_DOCKER_HEALTH_PERIOD instead, and `advertise` publishes what it found:

- healthy: the engine answers, `DockerVersion` is built like the first line of
  `docker -v` ("Docker version 20.10.24+dfsg1, build 5d6db84"), the networks
  are the engine's;
- unhealthy: with a reason an admin can act on (socket missing, permission
  denied on the socket, engine not answering, self-test failed with the engine's
  words).
A self-test container (DOCKER_PERFORM_TEST) runs `true` once after the first success
and after every recovery, never left behind; its failure is the advertised
DockerOfflineReason.  The image is the admin's CONDOR_DOCKER_TEST_IMAGE, else the
built-in one (selftest_image.py), loaded when missing: no registry is needed.  Only
state changes are logged.
"""
from __future__ import annotations

import errno
import logging
import os
import platform
import socket
import threading
import time
from dataclasses import dataclass

from ..core.failures import Code, Failure
from ..core.labels import SELFTEST_LABEL, selftest_filter
from ..core.settings import Settings
from ..core.spec import ContainerSpec
from . import selftest_image
from .client import Engine, translate_engine_errors

log = logging.getLogger("condor_docker.health")

SELFTEST_DEADLINE = 30.0  # seconds for `true` to run; a slower engine is not healthy


@dataclass(frozen=True)
class HealthState:
    healthy: bool
    version: str | None
    reason: str | None
    networks: tuple[str, ...]
    engine: str | None = None  # CondorDockerEngine: "docker 20.10.24" or "podman 4.3.1"


NOT_CHECKED = HealthState(False, None, "the engine has not been checked yet", ())


def docker_version_line(version: dict) -> str:
    """What `docker -v` prints first (HTCondor advertises that), built from the engine's version data."""
    text = f"Docker version {version.get('Version', 'unknown')}"
    commit = version.get("GitCommit")
    return f"{text}, build {commit}" if commit else text


def engine_line(version: dict) -> str:
    """Which engine answers and its version ("podman 4.3.1", "docker 20.10.24").

    DockerVersion keeps `docker -v`'s form for jobs that parse it, so it cannot say that
    Podman's Docker-compatible API is behind the socket; Podman names itself in the
    version reply's Components ("Podman Engine"), Docker as "Engine".
    """
    for component in version.get("Components") or ():
        if isinstance(component, dict) and component.get("Name") == "Podman Engine":
            return f"podman {component.get('Version', 'unknown')}"
    return f"docker {version.get('Version', 'unknown')}"


def socket_problem(url: str) -> str | None:
    """A reason when a unix engine socket is missing or refused to us; None otherwise."""
    if not url.startswith("unix://"):
        return None
    path = url[len("unix://"):]
    if not os.path.exists(path):
        return f"the Docker engine socket {path} does not exist (is dockerd running?)"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(5)
    try:
        probe.connect(path)
    except PermissionError:
        return f"permission denied on the Docker engine socket {path} (the agent must run as root)"
    except OSError as err:
        if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return f"nothing listens on the Docker engine socket {path} (is dockerd running?)"
        return f"cannot connect to the Docker engine socket {path}: {err.strerror or err}"
    finally:
        probe.close()
    return None


def selftest_spec(image: str, name: str) -> ContainerSpec:
    """The tiniest container that proves the engine can run one: `true`, no network, no privileges."""
    return ContainerSpec(
        name=name, image=image, entrypoint=None, command=("true",), user="65534:65534", group_add=(),
        environment=(), working_dir="/", mounts=(), labels=((SELFTEST_LABEL, "true"),),
        hostname="condor-docker-selftest", network_mode="none", cpu_shares=2, memory_mb=64,
        pids_limit=16, init=False, cap_drop=("ALL",), cap_add=(), security_opt=("no-new-privileges",),
        shm_size=0, stdin_open=False)


class Health:
    """Periodic engine checks; `current()` is what the agent advertises."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._state = NOT_CHECKED
        self._seen = False  # the engine was healthy at least once (Nomad's detected vs undetected)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._unsupported_logged = False

    def current(self) -> HealthState:
        return self._state

    def check(self) -> HealthState:
        """Check now, record and return the state; a self-test follows a first success or a recovery."""
        with self._lock:
            previous = self._state
            state = self._probe()
            if state.healthy and not previous.healthy and self._wants_selftest():
                problem = self._selftest()
                if problem is not None:
                    state = HealthState(False, state.version, problem, state.networks, state.engine)
            self._state = state
            self._log_change(previous, state)
            if state.healthy:
                self._seen = True
            return state

    def _probe(self) -> HealthState:
        problem = socket_problem(self.engine.url)
        if problem is not None:
            return HealthState(False, None, problem, ())
        try:
            version = self.engine.version()
            with translate_engine_errors("other", "networks"):
                networks = tuple(sorted(n["Name"] for n in self.engine.api.networks()))
        except Failure as err:
            return HealthState(False, None, f"the Docker engine does not answer: {err.reason}", ())
        return HealthState(True, docker_version_line(version), None, networks, engine_line(version))

    def _wants_selftest(self) -> bool:
        if not self.settings.perform_test:
            return False
        if self.settings.test_image or selftest_image.supported():
            return True
        if not self._unsupported_logged:
            self._unsupported_logged = True
            log.warning("no built-in self-test image for %s: set CONDOR_DOCKER_TEST_IMAGE to a local "
                        "image with `true`, or DOCKER_PERFORM_TEST = false", platform.machine())
        return False

    def _test_image(self) -> str:
        """The image the self-test runs: the admin's, else the built-in one (loaded when missing)."""
        if self.settings.test_image:
            if self.engine.image_inspect(self.settings.test_image) is None:
                raise Failure(Code.ENGINE_ERROR, f"the test image {self.settings.test_image} is not on this engine")
            return self.settings.test_image
        if self.engine.image_inspect(selftest_image.BUILTIN_TEST_IMAGE) is None:
            self.engine.load_image(selftest_image.image_archive(), selftest_image.BUILTIN_TEST_IMAGE)
            log.info("loaded the built-in self-test image %s", selftest_image.BUILTIN_TEST_IMAGE)
        return selftest_image.BUILTIN_TEST_IMAGE

    def _selftest(self) -> str | None:
        """Run `true` in the test image; None when it worked, else the reason with the engine's words."""
        self._runs += 1
        name = f"condor_docker_selftest_{os.getpid()}_{self._runs}"
        self._remove_leftovers()
        container_id = None
        try:
            container_id = self.engine.create(selftest_spec(self._test_image(), name))
            self.engine.start(container_id, name)
            deadline = time.monotonic() + SELFTEST_DEADLINE
            state = self.engine.inspect(container_id)
            while state is not None and state.running and time.monotonic() < deadline:
                time.sleep(0.1)
                state = self.engine.inspect(container_id)
            if state is None:
                return "self-test failed: the test container vanished"
            if state.running:
                return f"self-test failed: `true` still running after {SELFTEST_DEADLINE:g} s"
            if state.exit_code != 0:
                return f"self-test failed: `true` exited {state.exit_code} {state.error}".rstrip()
            return None
        except Failure as err:
            return f"self-test failed: {err.reason}"
        finally:
            if container_id is not None:
                self._remove_quietly(container_id)

    def _remove_leftovers(self) -> None:
        """A crash during an earlier self-test must not leave its container for ever."""
        try:
            with translate_engine_errors("other", "selftest"):
                leftovers = self.engine.api.containers(all=True, filters=selftest_filter())
        except Failure:
            return
        for container in leftovers:
            self._remove_quietly(container["Id"])

    def _remove_quietly(self, container_id: str) -> None:
        try:
            self.engine.remove(container_id)
        except Failure as err:
            log.warning("cannot remove self-test container %s: %s", container_id[:12], err.reason)

    def _log_change(self, previous: HealthState, state: HealthState) -> None:
        if state.healthy and not previous.healthy:
            if self._seen:
                log.info("engine recovered: %s", state.version)
            else:
                log.info("engine healthy: %s, networks %s", state.version, ", ".join(state.networks))
        elif not state.healthy and (previous.healthy or previous.reason != state.reason):
            log.warning("engine unhealthy: %s", state.reason)

    # -- periodic thread ---------------------------------------------------------
    def start(self) -> None:
        """Check now and then every CONDOR_DOCKER_HEALTH_PERIOD; calling it twice does nothing."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="condor_docker-health", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a bug must not freeze the advertised state for ever
                log.exception("engine health check crashed")
                self._state = HealthState(False, None, "the health check itself failed (see agent log)", ())
            if self._stop.wait(self.settings.health_period):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.engine_timeout + SELFTEST_DEADLINE)
            self._thread = None
