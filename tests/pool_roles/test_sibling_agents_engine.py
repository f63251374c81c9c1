"""Two execute containers share one host engine: one agent never removes the other's job container.

On the real engine: a running container of the same name as our job, labelled
by another agent (another execute node on this host, e.g. cluster 1.0 of
another schedd), must survive our create; our job goes back to idle (REQUEUE).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import tempfile

import classad2
import pytest
from pooltest import docker

from condor_docker.core import request, spec
from condor_docker.core.failures import Failure, Kind
from condor_docker.core.settings import default_settings
from condor_docker.engine.lifecycle import ContainerRun, JobIO, prepare_scratch

pytestmark = pytest.mark.engine
LOCAL_IMAGE = "condor-docker-test/busybox:local"


@pytest.fixture
def engine():
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine: run scripts/engine-up.sh")
    from condor_docker.engine.client import Engine
    handle = Engine()
    yield handle
    handle.close()


def test_a_sibling_agents_container_of_the_same_name_is_left_alone(engine, tmp_path):
    settings = default_settings(CONDOR_DOCKER_DEFAULT_NETWORK="none", DOCKER_TRUST_LOCAL_IMAGES="true",
                                CONDOR_DOCKER_AGENT_ID=f"roles-test-{secrets.token_hex(3)}")
    cluster = 900000 + secrets.randbelow(99999)  # a name no other test uses
    scratch = tempfile.mkdtemp(prefix="cd-roles-sibling-")
    nobody = (65534, 65534)
    os.chown(scratch, *nobody)
    ad = classad2.ClassAd({"ClusterId": cluster, "ProcId": 0, "Owner": "nobody", "DockerImage": LOCAL_IMAGE,
                           "Cmd": "/bin/true", "TransferExecutable": False, "RequestMemory": 32, "RequestCpus": 1})
    machine = classad2.ClassAd({"Name": "slot1_1@testhost", "Machine": "testhost", "Cpus": 1, "Memory": 32})
    job = request.from_ads(ad, machine, uid=nobody[0], gid=nobody[1], scratch_dir=scratch)
    prepare_scratch(scratch, *nobody)
    ours = spec.build_spec(job, settings)
    sibling = docker("run", "-d", "--name", ours.name, "--network", "none",
                     "--label", "org.condor_docker.managed=true", "--label", "org.condor_docker.uid=65534",
                     "--label", "org.condor_docker.agent=another-execute-node", LOCAL_IMAGE, "sleep", "300").stdout.strip()
    try:
        with open(tmp_path / "o", "wb") as out, open(tmp_path / "e", "wb") as err, open(os.devnull, "rb") as inp:
            run = ContainerRun(engine, ours, JobIO(out.fileno(), err.fileno(), inp.fileno()), kill_grace=2)
            with pytest.raises(Failure) as raised:
                run.run()
        assert raised.value.kind is Kind.REQUEUE
        assert "belongs to another condor_docker agent (another-execute-node)" in raised.value.reason
        assert docker("inspect", "-f", "{{.State.Running}}", sibling).stdout.strip() == "true"
    finally:
        docker("rm", "-f", sibling, check=False)
        subprocess.run(["rm", "-rf", scratch], check=False)
