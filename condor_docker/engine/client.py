"""The thin layer over the Docker Engine SDK; the only module that imports `docker`.

Two rules from the drivers we learn from (Nomad's docker driver, docker-py):
- classify at the boundary: every engine error leaves this module as a
  `Failure` (HOLD or REQUEUE) that keeps the engine's own words, via
  `translate_engine_errors`, which also wraps the pull stream;
- two clients: ordinary calls time out, `wait`/`attach`/`stats` never do (a job
  may run for days).
"""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import docker
import docker.errors
import docker.types
import requests
from docker.transport.unixconn import UnixHTTPAdapter

from ..core import imageref
from ..core.failures import Code, Failure
from ..core.labels import MANAGED_LABEL, managed_filter
from ..core.spec import ContainerSpec
from .streams import EngineStream
from .usage import ContainerCgroup

log = logging.getLogger("condor_docker.engine")

# Keep-alive connections a client keeps to the engine once its calls have returned; a call
# made while all of them are busy opens one more, closed when it returns (see _OnePoolAdapter).
IDLE_CONNECTIONS = 4


class _OnePoolAdapter(UnixHTTPAdapter):
    """One connection pool for the engine's unix socket, whatever the URL.

    docker-py keys its unix-socket pools by the whole URL, path and query
    included, and keeps up to 25 of them with up to 10 idle connections each:
    every container's own `/json`, `/wait`, `/attach`, every job's container
    list filtered by its scratch dir got a pool of its own, so each client
    held about 25 idle sockets to dockerd that were never closed (10 jobs left
    the agent 45 sockets to the engine, 35 more than at start).  There is one
    socket, so one pool, of at most IDLE_CONNECTIONS idle connections.
    """

    def get_connection(self, url, proxies=None):
        return super().get_connection("http+docker://localhost", proxies)


class _PoolFullIsNormal(logging.Filter):
    """urllib3 warns when it closes a connection its full pool cannot keep: that is the bound working."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Connection pool is full")


logging.getLogger("urllib3.connectionpool").addFilter(_PoolFullIsNormal())

# Engine/registry texts -> classification.  Checked in order; first match wins.
# Recorded texts are replayed in tests/unit/engine/test_classify.py.
_PULL_TEXTS: tuple[tuple[tuple[str, ...], Code], ...] = (
    (("invalid reference format", "invalid repository name"), Code.INVALID_IMAGE),
    (("unauthorized", "denied", "authentication required", "forbidden", "no basic auth credentials"),
     Code.IMAGE_ACCESS_DENIED),
    (("manifest unknown", "not found", "does not exist", "no such image", "name unknown"), Code.IMAGE_NOT_FOUND),
    (("timeout", "timed out", "deadline exceeded"), Code.PULL_TIMEOUT),
)
_START_TEXTS: tuple[tuple[tuple[str, ...], Code], ...] = (
    (("executable file not found", "no such file or directory", "permission denied",
      "exec format error", "not a directory"), Code.EXECUTABLE_NOT_FOUND),
)


def classify_engine_text(text: str, status: int | None, during: str) -> Code:
    """Pure classification of an engine/registry error message (`during`: pull/create/start/other)."""
    lowered = text.lower()
    if during == "pull":
        for needles, code in _PULL_TEXTS:
            if any(n in lowered for n in needles):
                return code
        return Code.REGISTRY_UNREACHABLE if status is None or status >= 500 else Code.IMAGE_NOT_FOUND
    if during == "start":
        for needles, code in _START_TEXTS:
            if any(n in lowered for n in needles):
                return code
    if status is not None and 400 <= status < 500:
        return Code.CONTAINER_REFUSED if during in ("create", "start", "exec") else Code.ENGINE_ERROR
    return Code.ENGINE_ERROR


def _what(during: str, subject: str) -> str:
    return {"pull": f"Cannot pull image {subject}",
            "create": f"Cannot create container {subject}",
            "start": f"Cannot start container {subject}",
            "exec": f"Cannot run a command in container {subject}"}.get(during, f"Docker engine error ({subject})")


@contextlib.contextmanager
def translate_engine_errors(during: str, subject: str) -> Iterator[None]:
    """Turn docker-py and requests errors into a classified Failure with the engine's words."""
    try:
        yield
    except Failure:
        raise
    except docker.errors.APIError as err:
        text = err.explanation or str(err)
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        code = classify_engine_text(text, err.status_code, during)
        raise Failure(code, f"{_what(during, subject)}: {text}") from err
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as err:
        if "timed out" in str(err).lower() and during == "pull":
            raise Failure(Code.PULL_TIMEOUT, f"{_what(during, subject)}: the pull made no progress for "
                          "CONDOR_DOCKER_PULL_STALL_TIMEOUT seconds") from err
        raise Failure(Code.ENGINE_UNAVAILABLE, f"{_what(during, subject)}: the Docker engine does not answer ({err})") from err
    except docker.errors.DockerException as err:  # e.g. client construction on a dead socket
        raise Failure(Code.ENGINE_UNAVAILABLE, f"{_what(during, subject)}: {err}") from err
    except OSError as err:
        raise Failure(Code.ENGINE_UNAVAILABLE, f"{_what(during, subject)}: {err}") from err


@dataclass(frozen=True)
class ContainerState:
    """What `inspect` says about a finished (or running) container."""
    id: str
    running: bool
    paused: bool
    exit_code: int
    oom_killed: bool
    error: str
    labels: dict
    created: str
    name: str


class Engine:
    """One engine endpoint; methods are one engine call each, errors already classified."""

    def __init__(self, url: str = "unix:///var/run/docker.sock", timeout: float = 60) -> None:
        self.url = url
        self.timeout = timeout
        self._api: docker.APIClient | None = None
        self._waiter: docker.APIClient | None = None
        self._clients_lock = threading.Lock()   # two threads' first calls must not make two clients

    # -- clients -----------------------------------------------------------------
    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            with self._clients_lock:
                if self._api is None:
                    self._api = self._client(self.timeout, "auto")
        return self._api

    @property
    def waiter(self) -> docker.APIClient:
        """A client with no timeout, for calls that last as long as the job."""
        if self._waiter is None:
            version = self.api.api_version
            with self._clients_lock:
                if self._waiter is None:
                    self._waiter = self._client(None, version)
        return self._waiter

    def _client(self, timeout: float | None, version: str) -> docker.APIClient:
        with translate_engine_errors("other", "connect"):
            client = docker.APIClient(base_url=self.url, timeout=timeout, version=version,
                                      max_pool_size=IDLE_CONNECTIONS)
        adapter = getattr(client, "_custom_adapter", None)
        if type(adapter) is UnixHTTPAdapter:
            one_pool = _OnePoolAdapter(adapter.socket_path, adapter.timeout, pool_connections=1,
                                       max_pool_size=IDLE_CONNECTIONS)
            client.mount("http+docker://", one_pool)
            client._custom_adapter = one_pool
            adapter.close()   # the version query's connection
        return client

    def close(self) -> None:
        with self._clients_lock:
            clients, self._api, self._waiter = (self._api, self._waiter), None, None
        for client in clients:
            if client is not None:
                client.close()

    # -- engine ------------------------------------------------------------------
    def version(self) -> dict:
        with translate_engine_errors("other", "version"):
            return self.api.version()

    # -- images ------------------------------------------------------------------
    def info(self) -> dict:
        """The engine's `docker info` (cgroup driver and version, ...)."""
        with translate_engine_errors("other", "info"):
            return self.api.info()

    def image_inspect(self, reference: str) -> dict | None:
        with translate_engine_errors("other", reference):
            try:
                return self.api.inspect_image(reference)
            except docker.errors.NotFound:
                return None

    def load_image(self, archive: bytes, what: str) -> None:
        """Load an image archive (`docker load`); an error the engine streams back is raised."""
        with translate_engine_errors("other", what):
            for chunk in self.api.load_image(archive):
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise Failure(Code.ENGINE_ERROR, f"cannot load {what}: {chunk['error']}")

    def images(self) -> list[dict]:
        with translate_engine_errors("other", "images"):
            return self.api.images()

    def remove_image(self, reference: str) -> bool:
        """Remove an image; False when it is in use or already gone."""
        with translate_engine_errors("other", reference):
            try:
                self.api.remove_image(reference, noprune=False)
                return True
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as err:
                if err.status_code == 409:  # in use by a container
                    return False
                raise

    def pull(self, reference: str, *, timeout: float, stall_timeout: float,
             on_progress: Callable[[dict], None] | None = None, credentials: bool = False) -> dict:
        """Pull with an overall deadline and a no-progress deadline; returns the image's inspect.

        docker-py's own pull has no timeout and reports a failure in the middle of
        the stream only as an item of it, so we drive the stream ourselves: the
        HTTP read timeout is the stall deadline, every item is checked for
        `error`, and a watchdog shuts the stream's socket at the overall
        deadline (a read blocked on a silent or trickling registry would
        otherwise see that deadline only when the next item arrives, i.e. at
        the stall deadline).  Closing the request makes the engine cancel the pull.

        The pull is anonymous unless `credentials`: only then does it carry the
        credentials of this process's docker config (root's ~/.docker/config.json
        or DOCKER_CONFIG, credential helpers included) for the reference's
        registry.  docker-py would look them up for any registry, and a job
        names the registry, so root's secrets went wherever a job pointed.
        """
        repository, tag = imageref.repository_and_tag(reference)
        expired = threading.Event()
        with translate_engine_errors("pull", reference):
            api = self.api
            headers = {}
            if credentials:  # the caller checked CONDOR_DOCKER_CREDENTIAL_REGISTRIES
                registry = imageref.registry_of(reference)
                auth_header = docker.auth.get_config_header(api, registry or docker.auth.INDEX_URL)
                if auth_header:
                    headers["X-Registry-Auth"] = auth_header
            started = time.monotonic()
            # the engine sends its response headers with the first progress item, so the
            # overall deadline also bounds the wait for them
            first_wait = min(stall_timeout, timeout)
            try:
                response = api._post(api._url("/images/create"), params={"fromImage": repository, "tag": tag},
                                     headers=headers, stream=True, timeout=(min(10.0, first_wait), first_wait))
            except requests.exceptions.ReadTimeout:
                if time.monotonic() - started < timeout - 0.5:
                    raise  # the stall deadline came first: translated as "made no progress"
                raise Failure(Code.PULL_TIMEOUT, f"Cannot pull image {reference}: not done after {timeout:g} s "
                                                 "(CONDOR_DOCKER_PULL_TIMEOUT)") from None
            with contextlib.suppress(AttributeError, OSError):
                _stream_socket(response).settimeout(stall_timeout)
            remaining = max(0.0, timeout - (time.monotonic() - started))
            watchdog = threading.Timer(remaining, _abandon, (response, expired))
            watchdog.daemon = True
            watchdog.start()
            try:
                api._raise_for_status(response)
                for item in api._stream_helper(response, decode=True):
                    if "error" in item or "errorDetail" in item:
                        text = item.get("error") or item["errorDetail"].get("message", "")
                        raise Failure(classify_engine_text(text, None, "pull"), f"Cannot pull image {reference}: {text}")
                    if expired.is_set():
                        break
                    if on_progress is not None:
                        on_progress(item)
            except Exception:  # a stream cut by the watchdog ends in whatever error urllib3 raises
                if not expired.is_set():
                    raise
            finally:
                watchdog.cancel()
                response.close()
            if expired.is_set():
                raise Failure(Code.PULL_TIMEOUT, f"Cannot pull image {reference}: not done after {timeout:g} s "
                                                 "(CONDOR_DOCKER_PULL_TIMEOUT)")
        inspected = self.image_inspect(reference)
        if inspected is None:
            raise Failure(Code.IMAGE_NOT_FOUND, f"Cannot pull image {reference}: the engine reported no image after the pull")
        return inspected

    # -- containers --------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        """Create the container; a name conflict is returned to the caller as-is (409)."""
        api = self.api
        host_config = api.create_host_config(
            mounts=[docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
                    for m in spec.mounts],
            network_mode=spec.network_mode,
            cpu_shares=spec.cpu_shares,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,
            pids_limit=spec.pids_limit or None,
            init=spec.init,
            cap_drop=list(spec.cap_drop) or None,
            cap_add=list(spec.cap_add) or None,
            security_opt=list(spec.security_opt),
            shm_size=spec.shm_size or None,
            group_add=list(spec.group_add),
            log_config=docker.types.LogConfig(type="none") if spec.log_driver_none else None,
            ulimits=[docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in spec.extras.ulimits] or None,
            devices=list(spec.extras.devices) or None,
            tmpfs=dict(spec.extras.tmpfs) or None,
            sysctls=dict(spec.extras.sysctls) or None,
            runtime=spec.extras.runtime,
            device_requests=[docker.types.DeviceRequest(driver=r.driver, device_ids=list(r.device_ids),
                                                        capabilities=[list(r.capabilities)] if r.capabilities else None)
                             for r in spec.device_requests] or None,
            cgroup_parent=spec.cgroup_parent,
            port_bindings={port: (spec.publish_address,) for port in spec.published} or None,
        )
        with translate_engine_errors("create", spec.name):
            created = api.create_container(
                image=spec.image,
                command=list(spec.command) if spec.command is not None else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                user=spec.user,
                environment=[f"{k}={v}" for k, v in spec.environment],
                working_dir=spec.working_dir,
                labels=dict(spec.labels),
                hostname=spec.hostname,
                name=spec.name,
                stdin_open=spec.stdin_open,
                network_disabled=spec.network_mode == "none",
                ports=list(spec.published) or None,
                host_config=host_config,
            )
        return created["Id"]

    def host_ports(self, container_id: str) -> dict[int, int]:
        """Container port -> the host port the engine published it on (tcp), for a started container."""
        with translate_engine_errors("other", container_id[:12]):
            ports = (self.api.inspect_container(container_id).get("NetworkSettings") or {}).get("Ports") or {}
        found: dict[int, int] = {}
        for key, bindings in ports.items():
            number, _, protocol = str(key).partition("/")
            for binding in bindings or ():
                if protocol in ("", "tcp") and str(binding.get("HostPort", "")).isdigit() and number.isdigit():
                    found.setdefault(int(number), int(binding["HostPort"]))
        return found

    def attach(self, container_id: str, stdin: bool) -> EngineStream:
        """The attach connection (stdout/stderr frames; stdin if asked), before start; the caller closes it."""
        with translate_engine_errors("other", container_id[:12]):
            params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1}
            return EngineStream(self.waiter.attach_socket(container_id, params=params))

    def start(self, container_id: str, name: str) -> None:
        with translate_engine_errors("start", name):
            self.api.start(container_id)

    def wait(self, container_id: str) -> int:
        with translate_engine_errors("other", container_id[:12]):
            return int(self.waiter.wait(container_id).get("StatusCode", -1))

    def inspect(self, container_id: str) -> ContainerState | None:
        with translate_engine_errors("other", container_id[:12]):
            try:
                data = self.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None
        state = data.get("State", {})
        return ContainerState(
            id=data["Id"], running=bool(state.get("Running")), paused=bool(state.get("Paused")),
            exit_code=int(state.get("ExitCode", -1)), oom_killed=bool(state.get("OOMKilled")),
            error=state.get("Error", "") or "", labels=data.get("Config", {}).get("Labels") or {},
            created=data.get("Created", ""), name=data.get("Name", "").lstrip("/"))

    def stats_stream(self, container_id: str) -> Iterator[dict]:
        """One sample a second until the container stops (no timeout).

        The response is closed when the generator is (docker-py's own stream
        never closes it, so a reader that stopped early left its socket to
        dockerd open until the garbage collector ran): close it, or read it
        inside `contextlib.closing`.
        """
        with translate_engine_errors("other", container_id[:12]):
            waiter = self.waiter
            response = waiter._get(waiter._url("/containers/{0}/stats", container_id),
                                   params={"stream": True}, stream=True)
            try:
                waiter._raise_for_status(response)
                yield from waiter._stream_helper(response, decode=True)
            finally:
                response.close()

    def size_rw(self, container_id: str) -> int | None:
        """Bytes in the container's writable layer (the engine's SizeRw); None if it is gone.

        Asked of the container list with size=true: Docker and Podman's compat API both report
        SizeRw there (a plain inspect has it on neither; docs/ENGINES.md).
        """
        with translate_engine_errors("other", container_id[:12]):
            found = self.api.containers(all=True, size=True, filters={"id": container_id})
        return int(found[0].get("SizeRw") or 0) if found else None

    def kill(self, container_id: str, signal: int | str = "SIGKILL") -> bool:
        """Send a signal; False when the container is gone or not running."""
        with translate_engine_errors("other", container_id[:12]):
            try:
                self.api.kill(container_id, signal=signal)
                return True
            except docker.errors.APIError as err:
                if err.status_code in (404, 409):
                    return False
                raise

    def pause(self, container_id: str) -> None:
        with translate_engine_errors("other", container_id[:12]):
            self.api.pause(container_id)

    def unpause(self, container_id: str) -> None:
        with translate_engine_errors("other", container_id[:12]):
            self.api.unpause(container_id)

    def remove(self, container_id: str, cgroup_parent: str | None = None) -> bool:
        """Force-remove with volumes, then the container's own parent cgroup; "not found" counts as done (False).

        The agent gives each container a parent cgroup of its own (engine/usage.py).  The
        run that made it passes it (`cgroup_parent`); any other remover (JOB_EXIT, the
        reaper after an agent restart) left it behind, empty, in every hierarchy, so
        without it the container's own is read from the engine first.
        """
        parent = cgroup_parent or self._own_cgroup_parent(container_id)
        with translate_engine_errors("other", container_id[:12]):
            try:
                self.api.remove_container(container_id, force=True, v=True)
                removed = True
            except docker.errors.NotFound:
                removed = False
            except docker.errors.APIError as err:
                if not (err.status_code == 409 and "already in progress" in str(err.explanation)):
                    raise
                return False   # another remover is at it: the cgroup is its to remove
        if parent is not None:
            ContainerCgroup(parent).remove()
        return removed

    def _own_cgroup_parent(self, container_id: str) -> str | None:
        """The managed container's per-container parent cgroup (named after it), else None."""
        try:
            data = self.api.inspect_container(container_id)
        except (docker.errors.DockerException, requests.RequestException):
            return None   # the remove that follows says what is wrong
        name = str(data.get("Name") or "").lstrip("/")
        parent = str((data.get("HostConfig") or {}).get("CgroupParent") or "")
        labels = (data.get("Config") or {}).get("Labels") or {}
        base = parent.rstrip("/").rpartition("/")[2]
        if not name or MANAGED_LABEL not in labels or not (base == name or base.startswith(name + ".")):
            return None
        return parent

    def managed_containers(self, extra_filters: dict | None = None) -> list[dict]:
        """Every container (running or not) that carries our label."""
        filters = managed_filter()
        filters.update(extra_filters or {})
        with translate_engine_errors("other", "list"):
            return self.api.containers(all=True, filters=filters)

    def exec_run(self, container_id: str, argv: list[str], user: str) -> tuple[int, bytes]:
        with translate_engine_errors("other", container_id[:12]):
            exec_id = self.api.exec_create(container_id, argv, user=user)["Id"]
            output = self.api.exec_start(exec_id)
            return int(self.api.exec_inspect(exec_id).get("ExitCode") or 0), output

    # -- exec into a running container (condor_ssh_to_job) ---------------------------
    def inspect_details(self, container_id: str) -> dict | None:
        """The engine's whole inspect document (Config.User, Config.WorkingDir, ...); None when gone."""
        with translate_engine_errors("other", container_id[:12]):
            try:
                return self.api.inspect_container(container_id)
            except docker.errors.NotFound:
                return None

    def exec_create(self, container_id: str, argv: list[str], *, user: str, workdir: str | None,
                    tty: bool, environment: dict[str, str], name: str) -> str:
        """An exec instance with stdin open; never privileged (the container's limits apply)."""
        with translate_engine_errors("exec", name):
            created = self.api.exec_create(container_id, argv, stdout=True, stderr=True, stdin=True, tty=tty,
                                           privileged=False, user=user, environment=environment or None,
                                           workdir=workdir)
        return created["Id"]

    def exec_attach(self, exec_id: str, tty: bool, name: str) -> EngineStream:
        """Start the exec and return its stream (frames unless tty), which lasts as long as the
        command; the caller closes it."""
        with translate_engine_errors("exec", name):
            return EngineStream(self.waiter.exec_start(exec_id, tty=tty, socket=True))

    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        with translate_engine_errors("other", exec_id[:12]):
            self.api.exec_resize(exec_id, height=rows, width=cols)

    def exec_inspect(self, exec_id: str) -> dict:
        with translate_engine_errors("other", exec_id[:12]):
            return self.api.exec_inspect(exec_id)


def _abandon(response: Any, expired: threading.Event) -> None:
    """The overall pull deadline passed: wake the reader blocked on the stream and end it."""
    expired.set()
    try:
        _stream_socket(response).shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):
        pass  # no socket to shut (already closed, or another transport): close() below ends it
    with contextlib.suppress(Exception):
        response.close()


def _stream_socket(response: Any) -> socket.socket:
    """The socket under a streamed docker-py response (unix socket or plain TCP to the engine)."""
    raw = response.raw._fp.fp.raw
    return getattr(raw, "_sock", raw)
