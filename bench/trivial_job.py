"""One trivial job through condor_docker's lifecycle vs a raw `docker run`, side by side.

    python bench/trivial_job.py [--runs N]

Both run `true` in the local test image with network none and --init; ours also
builds the spec, makes the scratch dir, attaches streams, inspects and removes.
Prints the median wall time of each and the ratio (ours / raw).  No pass/fail:
a target belongs here, not in a timed unit test.
"""
from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time

import classad2

from condor_docker.core import request, spec
from condor_docker.core.settings import default_settings
from condor_docker.engine.client import Engine
from condor_docker.engine.lifecycle import ContainerRun, JobIO, prepare_scratch

IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"


def ours(engine: Engine, uid: int, gid: int) -> float:
    scratch = tempfile.mkdtemp(prefix="cd-bench-")
    os.chown(scratch, uid, gid)
    started = time.perf_counter()
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0, "DockerImage": IMAGE, "Cmd": "true",
                           "TransferExecutable": False, "RequestMemory": 64, "RequestCpus": 1})
    job = request.from_ads(ad, classad2.ClassAd(), uid=uid, gid=gid, scratch_dir=scratch)
    prepare_scratch(scratch, uid, gid)
    container = spec.build_spec(job, default_settings(CONDOR_DOCKER_DEFAULT_NETWORK="none"))
    with open(os.devnull, "wb") as sink:
        result = ContainerRun(engine, container, JobIO(sink.fileno(), sink.fileno())).run()
    elapsed = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    assert result.exit_code == 0, result
    return elapsed


def raw() -> float:
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--init", "--network", "none", IMAGE, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run(["docker", "pull", "-q", IMAGE], check=True, stdout=subprocess.DEVNULL)
    user = pwd.getpwnam("nobody")
    engine = Engine()
    ours(engine, user.pw_uid, user.pw_gid)    # warm both paths once
    raw()
    mine, theirs = [], []
    for _ in range(args.runs):                # interleaved, so drift hits both alike
        mine.append(ours(engine, user.pw_uid, user.pw_gid))
        theirs.append(raw())
    m, r = statistics.median(mine), statistics.median(theirs)
    print(f"trivial job, {args.runs} runs each, median wall time")
    print(f"  condor_docker lifecycle : {m * 1000:8.1f} ms")
    print(f"  docker run --rm --init  : {r * 1000:8.1f} ms")
    print(f"  ratio (ours / raw)      : {m / r:8.2f}")


if __name__ == "__main__":
    main()
