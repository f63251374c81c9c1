"""Shared by tests/pool_roles: the docker CLI helper and the pool image (built once per session)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from testpaths import REPO

TARBALL_NAME = "htcondor-25.0.13-debian12-x86_64.tar.xz"
IMAGE = "condor-docker-test/pool:dev"
BASE = "condor-docker-test/debian-base:12"
JOB_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
SUBMITTER = "submitter"  # made by the Dockerfile, same uid on every node


def _tarball() -> str | None:
    for candidate in (Path(REPO).parent / "shared" / "htcondor" / TARBALL_NAME,
                      Path("/work/shared/htcondor") / TARBALL_NAME):
        if candidate.is_file():
            return str(candidate)
    return None


def _compose() -> list[str] | None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return [shutil.which("docker-compose")] if shutil.which("docker-compose") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done


def build_pool_image() -> str:
    tarball = _tarball()
    if tarball is None:
        pytest.skip(f"no shared HTCondor ({TARBALL_NAME} in ../shared/htcondor)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine: run scripts/engine-up.sh")
    subprocess.run(["bash", os.path.join(REPO, "scripts", "pool-base-image.sh")], check=True, timeout=900,
                   capture_output=True)
    pip = os.path.join(sys.prefix, "bin", "pip")
    built = subprocess.run(["bash", os.path.join(REPO, "examples", "pool", "build-image.sh"), "--base", BASE,
                            "--htcondor", tarball, "--tag", IMAGE, "--wheels"],
                           env=dict(os.environ, PIP=pip), capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    return IMAGE
