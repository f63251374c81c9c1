"""Boot the cgroup-v2 test guest (scripts/vm/build-guest.sh) under qemu and drive it over ssh.

    guest_dir, seconds, built = build_guest(repo)      # cached: seconds ~0 when nothing changed
    guest = Guest.boot(guest_dir)                     # qemu, waits for sshd; .boot_seconds
    guest.ssh("docker info")                          # -> CompletedProcess (text)
    guest.install_project(repo)                       # the checkout's wheel, pip-installed as an admin would
    pool = guest.pool("/opt/condor_docker/htcondor-25.0.13")   # tests/vm/guest_pool.py in the guest
    pool.call("submit", text=...); pool.close()
    guest.shutdown(); guest.leftovers() -> []         # no qemu, no port, no run dir

Networking: qemu's user-mode net with restrict=on (the guest reaches nothing, not even the
host) and one forward, 127.0.0.1:<free port> -> guest:22. No tap device, no bridge. The
guest's disk is a qcow2 overlay over the cached raw image, in a run dir under the cache
(/var/lib/condor_docker-test/vm/run-*), removed at shutdown with the serial console log,
the ssh control socket and the project wheel: nothing goes to /tmp.

Acceleration: $CONDOR_DOCKER_VM_ACCEL = auto (default) | kvm | tcg. auto tries KVM once per
kernel and qemu version when /dev/kvm exists (the kernel must reach its init within
KVM_PROBE_SECONDS) and remembers the result in the cache (accel-probe.json); else TCG.
"""
from __future__ import annotations

import io
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

CACHE = os.environ.get("CONDOR_DOCKER_VM_CACHE", "/var/lib/condor_docker-test/vm")
PROJECT_VENV = os.environ.get("VENV", "/opt/condor_docker/venv")
GUEST_VENV = "/opt/condor_docker/venv"
GUEST_CHECKOUT = "/root/checkout"
HOST_KEY_ALIAS = "condor-docker-vm"
KVM_PROBE_SECONDS = 20
QEMU = "qemu-system-x86_64"
# what the guest needs of the checkout besides the wheel (tests/vm/guest_pool.py drives poolfixture.Pool)
CHECKOUT_FILES = ("config.d", "tests/htcondor_pool/poolfixture.py", "tests/testusers.py", "tests/vm/guest_pool.py",
                  "scripts/engine-up.sh")
# what a run measured (build, boot, install, pool start, jobs); tests/vm/conftest.py prints it at the end
MEASURED: dict[str, str] = {}


class VMError(RuntimeError):
    """The guest could not be built, booted or driven; the message says what and where to look."""


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as stream:
            return stream.read()
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_tools() -> str | None:
    """Install qemu, qemu-img and debootstrap from Debian when missing; the reason when that is impossible."""
    if os.geteuid() != 0:
        return "the VM tests need root (debootstrap, chroot, mkfs.ext4 -d)"
    missing = [pkg for tool, pkg in ((QEMU, "qemu-system-x86"), ("qemu-img", "qemu-utils"),
                                     ("debootstrap", "debootstrap")) if shutil.which(tool) is None]
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"no apt-get to install {' '.join(missing)}"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env, timeout=600)
    install = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], capture_output=True, text=True,
                             env=env, timeout=1200)
    if install.returncode != 0 or any(shutil.which(t) is None for t in (QEMU, "qemu-img", "debootstrap")):
        return (f"cannot install {' '.join(missing)}: "
                f"{_tail(update.stderr + install.stdout + install.stderr, 10)}")
    return None


def htcondor_versions(repo: str) -> list[str]:
    """The HTCondor versions to test: those of the tarballs build-guest.sh finds (all of which the
    guest carries), or the ones named in $CONDOR_DOCKER_VM_HTCONDOR (comma-separated, e.g. 25.0.13)."""
    wanted = [v.strip() for v in os.environ.get("CONDOR_DOCKER_VM_HTCONDOR", "").split(",") if v.strip()]
    found = _tarball_versions(repo)
    return [v for v in found if v in wanted] if wanted else found


def cgroup_drivers() -> list[str]:
    """The guest engine's cgroup drivers to run each pool on: $CONDOR_DOCKER_VM_CGROUP_DRIVERS
    (comma-separated), by default systemd (the image's, what most v2 hosts run) then cgroupfs."""
    wanted = [d.strip() for d in os.environ.get("CONDOR_DOCKER_VM_CGROUP_DRIVERS", "systemd,cgroupfs").split(",")]
    return [d for d in wanted if d]


def _tarball_versions(repo: str) -> list[str]:
    directory = os.environ.get("CONDOR_DOCKER_VM_HTCONDOR_DIR")
    candidates = [directory] if directory else [os.path.join(os.path.dirname(repo), "shared", "htcondor"),
                                                "/work/shared/htcondor"]
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            found = sorted({m.group(1) for name in os.listdir(candidate)
                            if (m := re.match(r"htcondor-(\d+\.\d+\.\d+)-.*x86_64\.tar\.", name))},
                           key=lambda v: tuple(int(x) for x in v.split(".")))
            if found:
                return found
    return []


def build_guest(repo: str) -> tuple[str, float, bool]:
    """(guest dir, seconds, whether it was built now) from scripts/vm/build-guest.sh; exit 3 -> VMError('skip: ...')."""
    started = time.monotonic()
    cached_before = set(_guest_dirs())
    result = subprocess.run(["bash", os.path.join(repo, "scripts", "vm", "build-guest.sh")],
                            capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - started
    if result.returncode == 3:
        raise VMError("skip: " + (result.stderr.strip().splitlines() or ["build-guest.sh exited 3"])[-1])
    if result.returncode != 0:
        raise VMError(f"scripts/vm/build-guest.sh failed ({result.returncode}):\n{_tail(result.stderr)}")
    guest_dir = result.stdout.strip().splitlines()[-1]
    return guest_dir, seconds, guest_dir not in cached_before


def _guest_dirs() -> list[str]:
    if not os.path.isdir(CACHE):
        return []
    return [os.path.join(CACHE, name) for name in os.listdir(CACHE) if name.startswith("guest-")]


def _qemu_version() -> str:
    result = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


@dataclass
class Guest:
    """A booted guest: its qemu process, run dir and the ssh forward on 127.0.0.1."""
    guest_dir: str
    run_dir: str
    port: int = 0
    accel: str = "tcg"
    process: subprocess.Popen | None = None
    boot_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    overlay: bool = True
    powered_off: bool = False          # shutdown() saw the guest power itself off

    # -- boot -----------------------------------------------------------------------------------
    @classmethod
    def boot(cls, guest_dir: str, memory_mb: int = 4096, cpus: int = 2, timeout: float = 300,
             overlay: bool = True) -> "Guest":
        """Boot the guest from a fresh overlay; return once its sshd answers. On failure nothing is left.

        overlay=False boots the cached disk itself, writable (provision() only, while building).
        """
        os.makedirs(CACHE, 0o700, exist_ok=True)
        run_dir = tempfile.mkdtemp(prefix="run-", dir=CACHE)
        guest = cls(guest_dir=guest_dir, run_dir=run_dir, overlay=overlay)
        try:
            for accel in guest._accels():
                for _attempt in range(3):                   # a forward port taken meanwhile: another one
                    guest.port = free_port()
                    outcome = guest._start(accel, memory_mb, cpus, timeout)
                    if outcome != "port":
                        break
                if outcome == "up":
                    return guest
                guest.notes.append(f"{accel}: {outcome}")
            raise VMError(f"the guest did not boot ({'; '.join(guest.notes)}); console:\n"
                          f"{_tail(_read(guest.console_log))}")
        except BaseException:
            guest.shutdown()
            raise

    @property
    def console_log(self) -> str:
        return os.path.join(self.run_dir, "console.log")

    def _accels(self) -> list[str]:
        wanted = os.environ.get("CONDOR_DOCKER_VM_ACCEL", "auto")
        if wanted in ("kvm", "tcg"):
            return [wanted]
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return ["tcg"]
        probe = self._probe_key()
        known = self._probe_results().get(probe)
        if known is None:
            return ["kvm-probe", "tcg"]
        return ["kvm", "tcg"] if known else ["tcg"]

    def _probe_key(self) -> str:
        return f"{_qemu_version()} {_read(os.path.join(self.guest_dir, 'manifest')).splitlines()[1:2]}"

    def _probe_results(self) -> dict:
        try:
            return json.loads(_read(os.path.join(CACHE, "accel-probe.json")) or "{}")
        except ValueError:
            return {}

    def _remember_probe(self, works: bool) -> None:
        results = self._probe_results()
        results[self._probe_key()] = works
        with open(os.path.join(CACHE, "accel-probe.json"), "w") as stream:
            json.dump(results, stream, indent=1)

    def _qemu_command(self, accel: str, memory_mb: int, cpus: int) -> list[str]:
        if self.overlay:
            disk, disk_format = os.path.join(self.run_dir, "overlay.qcow2"), "qcow2"
            if not os.path.exists(disk):
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                os.path.join(self.guest_dir, "disk.raw"), disk], check=True, timeout=60)
        else:
            disk, disk_format = os.path.join(self.guest_dir, "disk.raw"), "raw"
        cpu = ["-accel", "kvm"] if accel.startswith("kvm") else ["-accel", "tcg,thread=multi", "-cpu", "max"]
        return [QEMU, *cpu, "-m", str(memory_mb), "-smp", str(cpus), "-nodefaults", "-display", "none",
                "-no-reboot", "-no-user-config",
                "-kernel", os.path.join(self.guest_dir, "vmlinuz"),
                "-initrd", os.path.join(self.guest_dir, "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 "
                           "systemd.show_status=false",
                "-drive", f"file={disk},if=virtio,format={disk_format},"
                          f"cache={'unsafe' if self.overlay else 'writeback'}",
                "-netdev", f"user,id=n0,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci",
                "-serial", f"file:{self.console_log}",
                "-monitor", "none"]

    def _start(self, accel: str, memory_mb: int, cpus: int, timeout: float) -> str:
        """'up', 'port' (the forward could not bind), or why the boot failed."""
        started = time.monotonic()
        if os.path.exists(self.console_log):
            os.unlink(self.console_log)
        qemu_log = open(os.path.join(self.run_dir, "qemu.log"), "w")
        try:
            self.process = subprocess.Popen(self._qemu_command(accel, memory_mb, cpus), stdin=subprocess.DEVNULL,
                                            stdout=qemu_log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            qemu_log.close()
        self.accel = accel.replace("-probe", "")
        probe_deadline = started + KVM_PROBE_SECONDS if accel == "kvm-probe" else None
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = _read(os.path.join(self.run_dir, "qemu.log"))
                self.process = None
                if "hostfwd" in log or "host forwarding" in log:
                    return "port"
                if accel == "kvm-probe":
                    self._remember_probe(False)
                return f"qemu exited: {_tail(log, 5)}"
            if probe_deadline and time.monotonic() > probe_deadline:
                if "Run /init" not in _read(self.console_log):
                    self._kill_qemu()
                    self._remember_probe(False)
                    return f"kvm: the kernel did not reach its init in {KVM_PROBE_SECONDS} s"
                self._remember_probe(True)
                probe_deadline = None
            if "Run /init" in _read(self.console_log) and self._ssh_ready():
                self.boot_seconds = time.monotonic() - started
                return "up"
            time.sleep(1)
        self._kill_qemu()
        return f"sshd did not answer within {timeout} s"

    def _ssh_ready(self) -> bool:
        try:
            return self.ssh("true", timeout=20, check=False, connect_timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    # -- control --------------------------------------------------------------------------------
    def ssh_argv(self, connect_timeout: int = 10) -> list[str]:
        return ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", os.path.join(self.guest_dir, "id_ed25519"),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", f"HostKeyAlias={HOST_KEY_ALIAS}", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={os.path.join(self.guest_dir, 'known_hosts')}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
                "-o", f"ConnectTimeout={connect_timeout}", "-o", "ServerAliveInterval=15",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={os.path.join(self.run_dir, 'ssh.ctl')}",
                "-o", "ControlPersist=120", "root@127.0.0.1"]

    def ssh(self, command: str, input: str | bytes | None = None, timeout: float = 300, check: bool = True,
            connect_timeout: int = 10) -> subprocess.CompletedProcess:
        """Run a shell command in the guest as root."""
        text = not isinstance(input, bytes)
        result = subprocess.run([*self.ssh_argv(connect_timeout), command], input=input, capture_output=True,
                                text=text, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise VMError(f"in the guest: {command!r} failed ({result.returncode}):\n"
                          f"{result.stdout}{result.stderr}")
        return result

    def put_tar(self, members: dict[str, str | bytes], dest: str) -> None:
        """Unpack {path in archive: host path or bytes} into the guest's `dest` (made afresh)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, source in members.items():
                if isinstance(source, bytes):
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = len(source), 0o644
                    archive.addfile(info, io.BytesIO(source))
                else:
                    archive.add(source, arcname=name,
                                filter=lambda i: None if "__pycache__" in i.name else i)
        self.ssh(f"rm -rf {dest} && mkdir -p {dest} && tar -C {dest} --no-same-owner -xf -",
                 input=buffer.getvalue())

    def build_wheel(self, repo: str) -> str:
        """The project's wheel, built on the host from a copy of the checkout (never in it)."""
        source = os.path.join(self.run_dir, "src")
        os.makedirs(source)
        for name in ("setup.cfg", "pyproject.toml", "README.md"):
            if os.path.exists(os.path.join(repo, name)):
                shutil.copy(os.path.join(repo, name), source)
        shutil.copytree(os.path.join(repo, "condor_docker"), os.path.join(source, "condor_docker"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        dist = os.path.join(self.run_dir, "dist")
        env = dict(os.environ, TMPDIR=self.run_dir, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        result = subprocess.run([os.path.join(PROJECT_VENV, "bin", "python"), "-m", "pip", "wheel", "-q",
                                 "--no-deps", "--no-build-isolation", "-w", dist, source],
                                capture_output=True, text=True, env=env, timeout=300)
        shutil.rmtree(source, ignore_errors=True)
        wheels = [n for n in os.listdir(dist) if n.endswith(".whl")] if os.path.isdir(dist) else []
        if result.returncode != 0 or len(wheels) != 1:
            raise VMError(f"building the project's wheel failed: {_tail(result.stdout + result.stderr)}")
        return os.path.join(dist, wheels[0])

    def install_project(self, repo: str) -> str:
        """Copy the checkout's wheel and test helpers in; pip install the wheel as an admin would."""
        wheel = self.build_wheel(repo)
        members = {f"dist/{os.path.basename(wheel)}": wheel}
        members.update({name: os.path.join(repo, name) for name in CHECKOUT_FILES})
        self.put_tar(members, GUEST_CHECKOUT)
        # the guest's disk is a fresh overlay: the project is not installed yet; its dependencies
        # are (build-guest.sh), and pip resolves them against the wheel dir, offline
        self.ssh(f"{GUEST_VENV}/bin/pip install -q --disable-pip-version-check --no-index "
                 f"--find-links /opt/condor_docker/wheels {GUEST_CHECKOUT}/dist/{os.path.basename(wheel)} && "
                 f"chmod -R a+rX,go-w {GUEST_VENV} && {GUEST_VENV}/bin/condor_docker --help >/dev/null")
        return os.path.basename(wheel)

    def cgroup_driver(self) -> str:
        return self.ssh("docker info --format '{{.CgroupDriver}}'").stdout.strip()

    def set_cgroup_driver(self, driver: str, timeout: float = 300) -> bool:
        """The guest engine on `driver` (systemd, the image's, or cgroupfs): daemon.json's exec-opts
        and a restart of docker.service when it changes (the overlay is thrown away at shutdown).
        Images and the test registry (a process of its own) survive the restart. True if it changed."""
        if driver not in ("systemd", "cgroupfs"):
            raise VMError(f"unknown cgroup driver {driver!r}")
        if self.cgroup_driver() == driver:
            return False
        self.ssh(f"sed -i 's/native.cgroupdriver=[a-z]*/native.cgroupdriver={driver}/' /etc/docker/daemon.json && "
                 f"grep -q 'native.cgroupdriver={driver}' /etc/docker/daemon.json && systemctl restart docker && "
                 f"for i in $(seq 1 120); do timeout 10 docker info >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1",
                 timeout=timeout)
        if self.cgroup_driver() != driver:
            raise VMError(f"the guest's engine is not on the {driver} driver after its restart")
        return True

    def pool(self, release_dir: str, timeout: float = 900) -> "GuestPool":
        client = GuestPool(self)
        try:
            client.info = client.call("create", release_dir=release_dir, timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    # -- shut down --------------------------------------------------------------------------------
    def _kill_qemu(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(20)
        self.process = None

    def shutdown(self, timeout: float = 90) -> None:
        """systemctl poweroff in the guest, wait for qemu to exit (else kill it); remove the run dir."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.ssh("systemctl poweroff --no-block", timeout=30, check=False)
            except subprocess.TimeoutExpired:
                pass
            try:
                self.process.wait(timeout)
                self.powered_off = True
            except subprocess.TimeoutExpired:
                self.notes.append(f"the guest did not power off in {timeout} s: qemu killed")
        self._kill_qemu()
        control = os.path.join(self.run_dir, "ssh.ctl")
        if os.path.exists(control):
            subprocess.run(["ssh", "-F", "/dev/null", "-o", f"ControlPath={control}", "-O", "exit", "x"],
                           capture_output=True, timeout=30)
        if os.path.exists(self.console_log):   # kept for a look after the run (the run dir goes)
            shutil.copy(self.console_log, os.path.join(CACHE, "last-console.log"))
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What the guest left on the host: a qemu process of this run, the forward's port, the run dir."""
        left = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as stream:
                    cmdline = stream.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.run_dir in cmdline:
                left.append(f"process {pid}: {cmdline[:200]}")
        if self.port and port_listening(self.port):
            left.append(f"port 127.0.0.1:{self.port} still listening")
        if os.path.exists(self.run_dir):
            left.append(f"run dir {self.run_dir}")
        return left


def provision(guest_dir: str, repo: str) -> None:
    """Boot a new guest's own disk once and run scripts/vm/provision-guest.sh in it (build-guest.sh's last step)."""
    guest = Guest.boot(guest_dir, overlay=False, timeout=600)
    try:
        guest.put_tar({"provision-guest.sh": os.path.join(repo, "scripts", "vm", "provision-guest.sh"),
                       "engine-up.sh": os.path.join(repo, "scripts", "engine-up.sh")}, "/root/provision")
        print(guest.ssh("bash /root/provision/provision-guest.sh", timeout=1800).stdout, flush=True)
    finally:
        guest.shutdown(timeout=180)
    if not guest.powered_off:
        raise VMError(f"the provisioning boot did not power off cleanly: {guest.notes}")
    left = guest.leftovers()
    if left:
        raise VMError(f"the provisioning boot left: {left}")
    print(f"provisioned in a boot of {guest.boot_seconds:.0f} s to sshd ({guest.accel})", flush=True)


class GuestPool:
    """The host's end of tests/vm/guest_pool.py serve: one JSON request, one JSON answer per line."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.info: dict = {}
        self._buffer = b""
        self._stderr = open(os.path.join(guest.run_dir, "serve.err"), "w")
        self.process = subprocess.Popen(
            [*guest.ssh_argv(), f"exec {GUEST_VENV}/bin/python -u {GUEST_CHECKOUT}/tests/vm/guest_pool.py serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        ready = self._answer(180)
        if not ready.get("ready"):
            raise VMError(f"guest_pool.py did not start: {ready}")

    def _answer(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VMError(f"no answer from guest_pool.py in {timeout} s")
                if not selector.select(left):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    raise VMError("guest_pool.py went away: "
                                  f"{_tail(_read(os.path.join(self.guest.run_dir, 'serve.err')))}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, op: str, timeout: float = 600, **request) -> dict:
        request["op"] = op
        if op == "wait":
            request.setdefault("timeout", timeout - 30)
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        answer = self._answer(timeout)
        if not answer.pop("ok"):
            raise VMError(f"guest pool {op}: {answer['error']}\n{answer.get('traceback', '')}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()         # the server stops the pool, if any, at EOF
            try:
                self.process.wait(180)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process.stdout.close()
        self._stderr.close()


if __name__ == "__main__":
    # a guest by hand: python tests/vm/vmfixture.py [HTCONDOR_VERSION]  (kill -TERM PID stops it)
    # build-guest.sh's last step: python3 tests/vm/vmfixture.py provision GUEST_DIR
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[1:2] == ["provision"] and len(sys.argv) == 3:
        provision(sys.argv[2], repo)
        sys.exit(0)
    why = ensure_tools()
    if why:
        sys.exit(why)
    guest_dir, build_seconds, _built = build_guest(repo)
    guest = Guest.boot(guest_dir)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    pool = None
    try:
        print(f"booted in {guest.boot_seconds:.0f} s ({guest.accel}); ssh: {' '.join(guest.ssh_argv())}", flush=True)
        guest.install_project(repo)
        guest.ssh(f"bash {GUEST_CHECKOUT}/scripts/engine-up.sh", timeout=900)
        if len(sys.argv) > 1:
            pool = guest.pool(f"/opt/condor_docker/htcondor-{sys.argv[1]}")
            print(f"pool: {json.dumps(pool.info)}", flush=True)
        print("ready; kill -TERM", os.getpid(), "to stop", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        if pool is not None:
            print("pool stop:", pool.call("stop", timeout=300), flush=True)
            pool.close()
        guest.shutdown()
        print("left:", guest.leftovers(), flush=True)
