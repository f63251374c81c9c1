"""Runs INSIDE the VM guest: a personal pool driven by tests/htcondor_pool/poolfixture.py, over stdin/stdout.

The host (tests/vm/vmfixture.py) starts `python guest_pool.py serve` over ssh and sends one
JSON request per line; each answer is one JSON line, {"ok": true, ...} or {"ok": false,
"error": "..."}. One long-lived process, because under software emulation every Python
start in the guest costs seconds.

The pool is the one tests/htcondor_pool/poolfixture.py makes on the host (same base config, the
shipped config.d files, the same test overrides), with the two differences an admin's
machine has:
  - condor_docker is the admin's install, /opt/condor_docker/venv (the project's wheel,
    built on the host from the checkout under test, pip-installed with --no-index);
  - condor_master runs as a systemd service with Delegate=yes, as HTCondor's own
    condor.service does, so that HTCondor may manage the cgroup v2 subtree it runs in.

The checkout's files this needs are copied next to it: tests/htcondor_pool/poolfixture.py,
tests/testusers.py, config.d/.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(CHECKOUT, "tests", "htcondor_pool"))
sys.path.insert(0, os.path.join(CHECKOUT, "tests"))

import poolfixture  # noqa: E402
from poolfixture import Job, Pool, PoolError, _read, _tail  # noqa: E402

ADMIN_VENV = "/opt/condor_docker/venv"


class GuestPool(Pool):
    """poolfixture.Pool with the admin's venv and condor_master under systemd (Delegate=yes)."""
    first_offline: dict | None = None     # the slot ad's first HasDocker = false, if any

    @property
    def venv(self) -> str:
        return ADMIN_VENV

    @property
    def unit(self) -> str:
        return f"condor-vm-{os.path.basename(self.root)}.service"

    def _install_project(self) -> None:
        if not os.access(os.path.join(ADMIN_VENV, "bin", "condor_docker"), os.X_OK):
            raise PoolError(f"condor_docker is not installed in {ADMIN_VENV}")

    def start(self, timeout: float = 600) -> None:
        """Pool.start, with condor_master -f as a transient systemd service (like condor.service)."""
        self.started_at = time.time()
        command = ["systemd-run", "--quiet", "--collect", f"--unit={self.unit}",
                   "--property=Delegate=yes", "--property=TasksMax=infinity",
                   "--property=LimitNOFILE=16384", "--property=Type=simple"]
        command += [f"--setenv={k}={v}" for k, v in self.env.items()]
        command += [os.path.join(self.release_dir, "sbin", "condor_master"), "-f"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PoolError(f"systemd-run condor_master failed: {result.stderr}")
        slot = self.wait_for(lambda: self._slot_ad(), timeout, "the startd's slot ad in the collector", 1.0)
        start_time = float(slot.get("DaemonStartTime", self.started_at))

        def has_docker() -> bool:
            ad = self._slot_ad() or {}
            if ad.get("HasDocker") is False and not self.first_offline:
                self.first_offline = {"after": time.time() - start_time,
                                      "DockerOfflineReason": ad.get("DockerOfflineReason")}
            return ad.get("HasDocker") is True
        try:
            self.wait_for(has_docker, timeout, "HasDocker = true in the slot ad", 1.0)
        except AssertionError:
            raise PoolError(f"HasDocker never became true: {self._slot_ad()}\n"
                            f"agent log:\n{_tail(self.agent_log())}\nStartLog:\n"
                            f"{_tail(_read(os.path.join(self.log_dir, 'StartLog')))}") from None
        self.has_docker_after = time.time() - start_time

    def stop(self, timeout: float = 120) -> list[str]:
        killed = super().stop(timeout)
        subprocess.run(["systemctl", "stop", self.unit], capture_output=True, timeout=120)
        subprocess.run(["systemctl", "reset-failed", self.unit], capture_output=True, timeout=60)
        return killed


def ad_json(ad) -> dict:
    """A ClassAd as plain JSON: literals as values, expressions evaluated (else their text)."""
    out = {}
    for key in ad.keys():
        value = ad.get(key)
        if not (value is None or isinstance(value, (bool, int, float, str))):
            try:
                value = ad.eval(key)
            except Exception:  # noqa: BLE001 - an expression that does not evaluate: its text
                value = str(value)
            if not (value is None or isinstance(value, (bool, int, float, str))):
                value = str(value)
        out[key] = value
    return out


class Server:
    def __init__(self) -> None:
        self.pool: GuestPool | None = None

    def job(self, request: dict) -> Job:
        return Job(cluster=request["cluster"], dir=request["dir"], user=request["user"],
                   count=request.get("count", 1))

    def op_create(self, request: dict) -> dict:
        from testusers import ensure_users
        ensure_users()
        started = time.monotonic()
        self.pool = GuestPool.create(request["release_dir"], CHECKOUT)
        return {"root": self.pool.root, "port": self.pool.port, "config_file": self.pool.config_file,
                "env": self.pool.env, "has_docker_after": self.pool.has_docker_after,
                "first_offline": self.pool.first_offline, "start_seconds": time.monotonic() - started}

    def op_slot_ad(self, request: dict) -> dict:
        return {"ad": ad_json(self.pool.slot_ad())}

    def op_submit(self, request: dict) -> dict:
        job = self.pool.submit(request["text"], user=request.get("user", "cdtest1"), files=request.get("files"))
        return {"cluster": job.cluster, "dir": job.dir, "user": job.user, "count": job.count}

    def op_wait(self, request: dict) -> dict:
        ad = self.pool.wait(self.job(request), request.get("until", "done"), timeout=request.get("timeout", 600))
        return {"ad": ad_json(ad)}

    def op_ad(self, request: dict) -> dict:
        return {"ad": ad_json(self.pool.ad(self.job(request), request.get("proc", 0)))}

    def op_rm(self, request: dict) -> dict:
        self.pool.rm(self.job(request), timeout=request.get("timeout", 120))
        return {}

    def op_history(self, request: dict) -> dict:
        """condor_history's own view of the job (what an accounting system would read)."""
        result = self.pool.condor("condor_history", "-l", f"{request['cluster']}.{request.get('proc', 0)}",
                                  check=False, timeout=120)
        import classad2
        ads = list(classad2.parseAds(result.stdout, classad2.ParserType.Old)) if result.stdout.strip() else []
        return {"ad": ad_json(ads[0]) if ads else None, "stderr": result.stderr}

    def op_condor(self, request: dict) -> dict:
        result = self.pool.condor(*request["argv"], user=request.get("user"), check=False,
                                  timeout=request.get("timeout", 120))
        return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    def op_logs(self, request: dict) -> dict:
        names = request.get("names") or sorted(os.listdir(self.pool.log_dir))
        return {"logs": {name: _read(os.path.join(self.pool.log_dir, name)) for name in names}}

    def op_stop(self, request: dict) -> dict:
        if self.pool is None:
            return {"killed": [], "before": [], "after": [], "root_left": False}
        pool, self.pool = self.pool, None
        before = pool.leftovers()
        killed = pool.stop()
        after = pool.leftovers()
        for container in pool.managed_containers():
            container.remove(force=True, v=True)
        pool.destroy()
        return {"killed": killed, "before": before, "after": after, "root_left": os.path.exists(pool.root)}

    def serve(self, stdin, stdout) -> None:
        for line in stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            try:
                answer = getattr(self, "op_" + request["op"])(request)
                answer["ok"] = True
            except BaseException as error:  # noqa: BLE001 - everything goes back to the host
                answer = {"ok": False, "error": f"{type(error).__name__}: {error}",
                          "traceback": traceback.format_exc()}
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()
        if self.pool is not None:   # the host went away: leave nothing running
            self.op_stop({})


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("usage: guest_pool.py serve   (JSON requests on stdin, one per line)")
    poolfixture.TEST_ROOT = "/var/lib/condor_docker-test"
    print(json.dumps({"ok": True, "ready": True, "python": sys.version.split()[0]}), flush=True)
    Server().serve(sys.stdin, sys.stdout)
