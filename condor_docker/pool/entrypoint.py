"""`condor_docker pool-node`: a pool node container's entrypoint and PID 1.

It writes the node's HTCondor config for its role (flags, or CONDOR_DOCKER_POOL_*
environment), merges injected site config, installs the pool secret (or refuses
to start without one), then runs `condor_master -f` as its child and supervises
it: SIGTERM/SIGINT -> `condor_off -fast -master`, wait (bounded), exit 0; the
master dying on its own -> exit 1 so the orchestrator restarts the node.  As PID
1 it also reaps orphans, so no separate init is needed (`--init` does no harm).
"""
from __future__ import annotations

import argparse
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ..core import settings
from ..core.argparsing import Parser
from . import injection, roles, security, sshaccess

log = logging.getLogger("condor_docker.pool")

CONFIG_ROOT = "/etc/condor_docker/pool"
DEFAULT_PASSWORD_FILE = "/etc/condor_docker/secrets/pool-password"
ENV_PREFIX = "CONDOR_DOCKER_POOL_"
_SHORT = {"central-manager": "cm", "access-point": "ap", "execute": "ep"}


class NodeError(RuntimeError):
    """The node cannot start; the message says why and what to change."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_flag(name: str) -> bool:
    return _env(name).strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="condor_docker pool-node", description=__doc__.split("\n\n")[0], usage_exit=2)
    p.add_argument("--role", default=_env("ROLE"), help=f"one of {', '.join(roles.ROLES)} (ROLE)")
    p.add_argument("--central-manager", default=_env("CENTRAL_MANAGER"), metavar="HOST[:PORT]",
                   help="the pool's collector (CENTRAL_MANAGER)")
    p.add_argument("--port", default=_env("PORT"), help="this node's shared port (PORT; default 9618, "
                   "the central manager's port on the central manager; 'auto': a free port)")
    p.add_argument("--name", default=_env("NAME"), help="this node's daemon names, unique in the pool "
                   "(NAME; default <cm|ap|ep>-<host name>; '{unique}' becomes a random suffix)")
    p.add_argument("--local-dir", default=_env("LOCAL_DIR", "/var/lib/condor"))
    p.add_argument("--execute-dir", default=_env("EXECUTE_DIR", ""),
                   help="execute role: a host directory mounted at the same path (EXECUTE_DIR); "
                   "'{name}' becomes the node's name (a subdirectory of a mounted root)")
    p.add_argument("--network-interface", default=_env("NETWORK_INTERFACE"))
    p.add_argument("--uid-domain", default=_env("UID_DOMAIN", "pool"))
    p.add_argument("--trust-domain", default=_env("TRUST_DOMAIN"))
    p.add_argument("--password-file", default=_env("PASSWORD_FILE", DEFAULT_PASSWORD_FILE),
                   help="the pool secret, mounted (PASSWORD_FILE)")
    p.add_argument("--insecure", action="store_true", default=_env_flag("INSECURE"),
                   help="no authentication at all: a throwaway demo only (INSECURE)")
    p.add_argument("--config", action="append", default=injection.split_sources(_env("CONFIG")),
                   metavar="FILE|DIR|URL", help="site config merged last (CONFIG: comma separated); a URL "
                   "is https:// or carries its digest, URL#sha256=HEX")
    p.add_argument("--config-timeout", type=_seconds, default=_env("CONFIG_TIMEOUT", "20"),
                   help="seconds for fetching every config URL, all together (CONFIG_TIMEOUT; default 20)")
    p.add_argument("--stop-timeout", type=_seconds, default=_env("STOP_TIMEOUT", "60"),
                   help="seconds to wait for the master after condor_off -fast")
    p.add_argument("--ssh-user", default=_env("SSH_USER"), help="access point: enable ssh for this user")
    p.add_argument("--ssh-authorized-keys", default=_env("SSH_AUTHORIZED_KEYS"), metavar="FILE|URL")
    p.add_argument("--ssh-port", type=_port, default=_env("SSH_PORT", "2222"))
    p.add_argument("--ssh-listen", default=_env("SSH_LISTEN"))
    p.add_argument("--ssh-allow-password", action="store_true", default=_env_flag("SSH_ALLOW_PASSWORD"))
    p.add_argument("--ssh-password-file", default=_env("SSH_PASSWORD_FILE"))
    p.add_argument("--health-listen", default=_env("HEALTH_LISTEN"), metavar="HOST:PORT",
                   help="also serve GET /healthz (the role health) here")
    p.add_argument("--print-config", action="store_true", help="print the generated config and exit")
    return p


def _release_dir() -> str:
    explicit = _env("RELEASE_DIR")
    if explicit:
        return explicit
    master = shutil.which("condor_master")
    if not master:
        raise NodeError("condor_master is not on PATH: install HTCondor in the image "
                        "or set CONDOR_DOCKER_POOL_RELEASE_DIR")
    return os.path.dirname(os.path.dirname(os.path.realpath(master)))


def _condor_ids() -> str:
    try:
        account = pwd.getpwnam("condor")
    except KeyError:
        raise NodeError("there is no 'condor' account in this image: create it (useradd -r condor)") from None
    return f"{account.pw_uid}.{account.pw_gid}"


def _free_port(address: str) -> int:
    """A port free right now on `address` (--port auto: replicas of one service on a host network)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.bind((address or "0.0.0.0", 0))
        return probe.getsockname()[1]


def node_options(args: argparse.Namespace) -> roles.NodeOptions:
    if not args.role:
        raise roles.RoleError(f"no role: give --role {'|'.join(roles.ROLES)} (or CONDOR_DOCKER_POOL_ROLE)")
    cm_host, cm_port = roles.parse_central_manager(args.central_manager)
    default_port = cm_port if args.role == "central-manager" else roles.DEFAULT_PORT
    if args.port == "auto" and args.role != "central-manager":
        port = _free_port(args.network_interface)
    else:
        port = roles.parse_port(args.port, "--port") if args.port else default_port
    # "{unique}" in --name: replicas of one service (compose --scale) get distinct names
    name = (args.name or f"{_SHORT.get(args.role, 'node')}-{socket.gethostname().split('.')[0]}").replace(
        "{unique}", secrets.token_hex(3))
    execute_dir = (args.execute_dir or os.path.join(args.local_dir, "execute")).replace("{name}", name)
    return roles.validate(roles.NodeOptions(
        role=args.role, cm_host=cm_host, cm_port=cm_port, port=port, name=name,
        local_dir=args.local_dir, execute_dir=execute_dir,
        network_interface=args.network_interface, uid_domain=args.uid_domain, trust_domain=args.trust_domain,
        release_dir=_release_dir(), condor_ids=_condor_ids(), condor_docker_prefix=sys.prefix,
        insecure=args.insecure))


def write_config(options: roles.NodeOptions, injected: list[injection.InjectedFile],
                 root: str = CONFIG_ROOT) -> str:
    """Write condor_config and a fresh config.d; returns the CONDOR_CONFIG path."""
    config_d = os.path.join(root, "config.d")
    os.makedirs(config_d, exist_ok=True)
    for stale in os.listdir(config_d):  # a restarted container must not keep last start's files
        os.unlink(os.path.join(config_d, stale))
    files = roles.role_config_d(options)
    files.update({item.name: injection.rendered(item) for item in injected})
    for name, text in files.items():
        with open(os.path.join(config_d, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    main = os.path.join(root, "condor_config")
    with open(main, "w", encoding="utf-8") as handle:
        handle.write(roles.role_config(options, config_d))
    return main


def make_dirs(options: roles.NodeOptions) -> None:
    uid, gid = (int(x) for x in options.condor_ids.split("."))
    for sub in ("log", "spool", "lock", "run", "condor_docker"):
        path = os.path.join(options.local_dir, sub)
        os.makedirs(path, mode=0o755, exist_ok=True)
        if sub != "condor_docker":  # the agent's state dir stays root's
            os.chown(path, uid, gid)
    if options.role == "execute":
        parent = os.path.dirname(options.execute_dir.rstrip("/"))
        if not os.path.isdir(options.execute_dir) and os.path.isdir(parent) and _is_mount_from_host(parent):
            os.mkdir(options.execute_dir, 0o755)  # --execute-dir ROOT/{name} under a mounted ROOT
        if not os.path.isdir(options.execute_dir) or not _is_mount_from_host(options.execute_dir):
            raise NodeError(f"execute dir {options.execute_dir} is not a host directory: bind-mount one "
                            "at the same path (-v DIR:DIR); job containers are siblings on the host and see "
                            "the host's path")
        os.chown(options.execute_dir, uid, gid)
        os.chmod(options.execute_dir, 0o755)


def _is_mount_from_host(path: str) -> bool:
    """Not on the container's own root file system: a bind mount (the host's path)."""
    return os.stat(path).st_dev != os.stat("/").st_dev


def _check_config(condor_env: dict[str, str]) -> None:
    """HTCondor's own reader must accept the result (a bad injected file stops us here)."""
    try:
        done = subprocess.run(["condor_config_val", "DAEMON_LIST"], env=condor_env, capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NodeError(f"cannot run condor_config_val: {getattr(err, 'strerror', None) or err}; "
                        "is HTCondor installed and on PATH in this image?") from None
    if done.returncode != 0:
        raise NodeError(f"HTCondor rejects the generated/injected config: {(done.stderr or done.stdout).strip()[:500]}")
    log.info("config ok: DAEMON_LIST = %s", done.stdout.strip())


@dataclass
class Supervisor:
    """condor_master -f (and the optional sshd / health endpoint) under one PID 1."""

    condor_env: dict[str, str]
    stop_timeout: float
    extra_argv: list[list[str]] = field(default_factory=list)
    master: subprocess.Popen | None = None
    helpers: list[subprocess.Popen] = field(default_factory=list)
    stop_requested: bool = False
    master_status: int | None = None

    def _on_signal(self, signum: int, _frame) -> None:
        if not self.stop_requested:
            log.info("signal %d: stopping the node", signum)
        self.stop_requested = True

    def start(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for argv in self.extra_argv:
            self.helpers.append(subprocess.Popen(argv, env=self.condor_env))
        self.master = subprocess.Popen(["condor_master", "-f"], env=self.condor_env)
        log.info("condor_master -f started (pid %d)", self.master.pid)

    def _reap(self) -> None:
        """Collect every exited child (PID 1 inherits orphans); note the master's status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.master is not None and pid == self.master.pid:
                self.master.returncode = os.waitstatus_to_exitcode(status)
                self.master_status = self.master.returncode

    def run(self) -> int:
        self.start()
        while not self.stop_requested and self.master_status is None:
            time.sleep(0.5)
            self._reap()
        if self.master_status is not None and not self.stop_requested:
            log.error("condor_master exited on its own with status %s: the node stops (the orchestrator "
                      "restarts it); see %s", self.master_status, "$(LOG)/MasterLog")
            self._stop_helpers()
            return 1
        self._stop_master()
        self._stop_helpers()
        return 0

    def _stop_master(self) -> None:
        if self.master_status is None:
            try:
                done = subprocess.run(["condor_off", "-fast", "-master"], env=self.condor_env, capture_output=True,
                                      text=True, timeout=min(30.0, self.stop_timeout), check=False)
                problem = "" if done.returncode == 0 else (done.stderr or done.stdout).strip().replace("\n", " ")
            except (OSError, subprocess.TimeoutExpired) as err:
                problem = str(err)
            if problem:
                log.warning("condor_off -fast -master failed (%s): sending the master SIGQUIT (fast shutdown)",
                            problem[:300])
                self.master.send_signal(signal.SIGQUIT)
        deadline = time.monotonic() + self.stop_timeout
        while self.master_status is None and time.monotonic() < deadline:
            time.sleep(0.2)
            self._reap()
        if self.master_status is None:
            log.warning("condor_master still runs after %.0f s: killing it", self.stop_timeout)
            self.master.kill()
            self.master.wait()
        log.info("condor_master stopped")

    def _stop_helpers(self) -> None:
        for helper in self.helpers:
            if helper.poll() is None:
                helper.terminate()
        for helper in self.helpers:
            try:
                helper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()


def prepare(args: argparse.Namespace) -> tuple[roles.NodeOptions, dict[str, str], list[list[str]]]:
    """Everything before the master starts; raises with a clear message on any problem."""
    options = node_options(args)
    secret = None if options.insecure else security.read_secret(args.password_file)  # refuse before writing
    injected = injection.collect(list(args.config), timeout=args.config_timeout)
    config_path = write_config(options, injected)
    condor_env = dict(os.environ, CONDOR_CONFIG=config_path)
    make_dirs(options)
    _check_config(condor_env)
    if options.insecure:
        log.warning("--insecure: this pool has NO authentication; anyone who can reach port %d "
                    "can control it. Use it for a throwaway demo only.", options.port)
    else:
        security.install(args.password_file, options.password_dir, options.token_dir,
                         roles.token_identity(options), condor_env, secret=secret)
    extra: list[list[str]] = []
    if args.ssh_user:
        if options.role != "access-point":
            raise NodeError("--ssh-user is for the access point only: drop it on this role")
        extra.append(sshaccess.prepare(sshaccess.SshOptions(
            user=args.ssh_user, authorized_keys=args.ssh_authorized_keys, port=args.ssh_port,
            listen=args.ssh_listen, allow_password=args.ssh_allow_password,
            password_file=args.ssh_password_file)))
    if args.health_listen:
        extra.append([sys.executable, "-m", "condor_docker.cli", "health", "--role", options.role,
                      "--listen", args.health_listen])
    return options, condor_env, extra


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror}; check that path in the image and its mounts"
    return f"{type(err).__name__}: {err}"


def _seconds(text: str) -> float:
    """A pool-node timeout: above 0 and under a day (a longer one only hides a node that hangs)."""
    return settings.seconds(text, positive=True, most=86400)


def _port(text: str) -> int:
    try:
        return roles.parse_port(text, "port")
    except roles.RoleError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main_pool_node(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s condor_docker pool-node %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.print_config:
            options = node_options(args)
            print(roles.role_config(options, os.path.join(CONFIG_ROOT, "config.d")))
            for name, text in roles.role_config_d(options).items():
                print(f"### config.d/{name}\n{text}")
            return 0
        options, condor_env, extra = prepare(args)
    except (roles.RoleError, injection.InjectionError, security.SecurityError, sshaccess.SshError,
            NodeError) as err:
        print(f"condor_docker pool-node: {err}", file=sys.stderr)
        return 2
    except (OSError, subprocess.SubprocessError) as err:  # one line, never a traceback
        print(f"condor_docker pool-node: cannot start: {_describe(err)}", file=sys.stderr)
        return 2
    log.info("role=%s name=%s central_manager=%s:%d port=%d config=%s", options.role, options.name,
             options.cm_host, options.cm_port, options.port, condor_env["CONDOR_CONFIG"])
    return Supervisor(condor_env, args.stop_timeout, extra).run()


main = main_pool_node
