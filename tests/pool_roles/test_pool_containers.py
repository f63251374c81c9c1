"""A real pool in containers on this machine: the README's one command, then a real job.

examples/pool/up.sh brings up central manager + access point + one execute
point from the pool image (built here from a Debian base and the shared
HTCondor 25.0 tarball), all on the host network with their own loopback ports.
A normal user on the access point submits a docker-universe job; it runs on the
execute container's agent as a sibling container on this engine (not nested,
no capabilities) and completes. Then health goes red when the startd is killed,
SIGTERM stops a node cleanly (exit 0), and everything is removed, even when a
step fails.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pooltest import JOB_IMAGE, SUBMITTER, _compose, _free_port, docker
from testpaths import REPO

pytestmark = pytest.mark.roles


@dataclass
class Pool:
    project: str
    root: Path
    compose: list[str]
    env: dict

    def container(self, service: str) -> str:
        done = docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
                      "--filter", f"label=com.docker.compose.service={service}")
        ids = done.stdout.split()
        assert len(ids) == 1, f"{service}: {ids}"
        return ids[0]

    def exec(self, service: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return docker("exec", self.container(service), *argv, timeout=timeout, check=False)

    def logs(self) -> str:
        done = subprocess.run([*self.compose, "-p", self.project, "-f", str(Path(REPO) / "examples/pool/compose.yaml"),
                               "logs", "--no-color", "--tail", "30"], env=self.env, capture_output=True, text=True,
                              timeout=60)
        return done.stdout[-4000:]


def _job_containers(execute_root: Path) -> list[str]:
    """Managed job containers whose scratch dir is under this pool's execute root."""
    done = docker("ps", "-a", "--filter", "label=org.condor_docker.managed=true",
                  "--format", '{{.ID}} {{.Label "org.condor_docker.scratch_dir"}}')
    return [line.split()[0] for line in done.stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1].startswith(str(execute_root))]


@pytest.fixture
def pool(pool_image):
    compose = _compose()
    if compose is None:
        pytest.skip("no compose tool: apt-get install docker-compose (or the docker compose plugin)")
    tag = secrets.token_hex(3)
    root = Path(f"/var/tmp/condor-docker-roles-test-{tag}")
    (root / "execute").mkdir(parents=True)
    (root / "secret").write_text(secrets.token_urlsafe(32) + "\n")
    os.chmod(root / "secret", 0o600)
    project = f"condor-docker-roles-test-{tag}"
    env = dict(os.environ, POOL_IMAGE=pool_image, POOL_PROJECT=project, POOL_INTERFACE="127.0.0.1",
               POOL_CM_PORT=str(_free_port()), POOL_AP_PORT=str(_free_port()),
               POOL_EXECUTE_ROOT=str(root / "execute"), POOL_SECRET=str(root / "secret"), COMPOSE=" ".join(compose))
    handle = Pool(project, root, compose, env)
    try:
        # the README's one command
        up = subprocess.run(["bash", os.path.join(REPO, "examples", "pool", "up.sh"), "1"], env=env,
                            capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        yield handle
    finally:
        subprocess.run([*compose, "-p", project, "-f", os.path.join(REPO, "examples/pool/compose.yaml"),
                        "down", "-t", "60"], env=env, capture_output=True, timeout=300)
        left = docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        jobs = _job_containers(root / "execute")
        for cid in left + jobs:  # only ours: this project's nodes and jobs under this pool's execute root
            docker("rm", "-f", cid, check=False)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"compose down left pool containers {left}"
        assert not jobs, f"job containers left behind: {jobs}"


def wait_healthy(pool: Pool, service: str, timeout: float = 150) -> str:
    deadline, line = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        done = pool.exec(service, "condor_docker", "health")
        line = (done.stdout + done.stderr).strip()
        if done.returncode == 0:
            return line
        time.sleep(3)
    raise AssertionError(f"{service} never became healthy: {line}\n{pool.logs()}")


SUBMIT = f"""\
universe = docker
docker_image = {JOB_IMAGE}
executable = /bin/sh
transfer_executable = false
arguments = "-c 'echo hello-from-the-pool; id -u; grep CapEff /proc/self/status; grep :pids: /proc/self/cgroup'"
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
output = out.txt
error = err.txt
log = job.log
request_memory = 64
request_cpus = 1
queue
"""


def test_pool_runs_a_docker_job_then_health_goes_red_and_nodes_stop_cleanly(pool):
    for service in ("central-manager", "access-point", "execute"):
        assert "ok" in wait_healthy(pool, service)

    home = f"/home/{SUBMITTER}"
    write = pool.exec("access-point", "runuser", "-u", SUBMITTER, "--", "sh", "-c",
                      f"cd {home} && cat > job.sub <<'EOF'\n{SUBMIT}EOF\ncondor_submit job.sub")
    assert write.returncode == 0, write.stdout + write.stderr
    cluster = re.search(r"submitted to cluster (\d+)", write.stdout).group(1)

    deadline, state = time.monotonic() + 180, ""
    while time.monotonic() < deadline:
        state = pool.exec("access-point", "condor_history", cluster, "-af", "JobStatus", "ExitCode").stdout.strip()
        if state:
            break
        held = pool.exec("access-point", "condor_q", cluster, "-af", "JobStatus", "HoldReason").stdout.strip()
        assert not held.startswith("5 "), f"job held: {held}"
        time.sleep(3)
    assert state == "4 0", f"job did not complete: {state!r}\n{pool.logs()}"

    out = pool.exec("access-point", "cat", f"{home}/out.txt").stdout.splitlines()
    assert out[0] == "hello-from-the-pool"
    uid = pool.exec("access-point", "id", "-u", SUBMITTER).stdout.strip()
    assert out[1] == uid, "the job's container runs as the submitting user"
    assert out[2].split() == ["CapEff:", "0000000000000000"], "no capabilities, never privileged"
    # a sibling on the host engine: /docker/<id>, or the agent's per-container parent
    # /condor_docker/<name>/<id>; never nested as /docker/<ep>/docker/<id>
    assert re.fullmatch(r"\d+:pids:/(docker|condor_docker/HTCJob_[A-Za-z0-9_.-]+)/[0-9a-f]{64}", out[3]), out[3]
    assert pool.exec("access-point", "cat", f"{home}/err.txt").stdout == ""

    # health goes red when a daemon dies (the collector still holds its ad for minutes)
    ps = pool.exec("execute", "ps", "-eo", "pid=,comm=").stdout
    startd = next(line.split()[0] for line in ps.splitlines() if line.split()[1] == "condor_startd")
    assert pool.exec("execute", "kill", "-9", startd).returncode == 0
    red = pool.exec("execute", "condor_docker", "health")
    assert red.returncode == 1 and "not running: condor_startd" in red.stdout, red.stdout + red.stderr
    assert len(red.stdout.strip().splitlines()) == 1

    # SIGTERM: condor_off -fast, wait, exit 0
    node = pool.container("access-point")
    started = time.monotonic()
    docker("stop", "-t", "90", node, timeout=120)
    assert time.monotonic() - started < 60
    assert docker("inspect", "-f", "{{.State.ExitCode}}", node).stdout.strip() == "0"
    assert "condor_master stopped" in docker("logs", node).stderr
