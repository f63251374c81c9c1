"""container_service_names on a real pool: the port is published, <name>_HostPort reaches the job ad.

The job serves on an admin network of this test's own (a user-defined bridge with an
explicit subnet and IP masquerading off, removed after); the port is published on
127.0.0.1 only (CONDOR_DOCKER_SERVICE_ADDRESS), and the test talks to it there: no
traffic to any other address.
"""
from __future__ import annotations

import glob
import os
import random
import secrets
import urllib.request

import pytest
from poolfixture import REGISTRY_IMAGE

CONFIG = "95-services-test.conf"


@pytest.fixture
def service_network(pool):
    import docker
    client = docker.APIClient(version="auto")
    name = f"cdtest-svc-{secrets.token_hex(3)}"
    subnet = f"172.30.{random.randint(100, 199)}.0/24"
    client.create_network(name, driver="bridge", options={"com.docker.network.bridge.enable_ip_masquerade": "false"},
                          ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]))
    pool.write_config(CONFIG, f"DOCKER_NETWORKS = {name}\nCONDOR_DOCKER_SERVICE_ADDRESS = 127.0.0.1\n")
    pool.reconfig()
    pool.wait_for(lambda: name in str(pool.slot_ad().get("DockerNetworks", "")).split(","), 120,
                  f"the slot advertises DockerNetworks with {name}")
    try:
        yield name
    finally:
        pool.remove_config(CONFIG)
        pool.reconfig()
        # the job's container leaves the network when the agent removes it, a moment after the job ends
        pool.wait_for(lambda: not client.inspect_network(name).get("Containers"), 120,
                      f"no container left on {name}")
        client.remove_network(name)
        client.close()


def _submit(pool, user, network: str, seconds: int = 40):
    return pool.submit(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
docker_network_type = {network}
executable = /bin/sh
arguments = "-c 'mkdir -p www && echo hello-service > www/index.html && httpd -f -p 8080 -h www & sleep {seconds}'"
transfer_executable = false
container_service_names = web
web_container_port = 8080
output = out.txt
error = err.txt
log = job.log
request_memory = 64
queue
""", user=user)


def test_a_service_port_is_published_and_its_host_port_reaches_the_job_ad(pool, pool_job_user, service_network):
    job = _submit(pool, pool_job_user, service_network)
    pool.wait(job, "running", timeout=180)
    port = pool.wait_for(lambda: pool.ad(job).get("web_HostPort"), 60, "web_HostPort in the schedd's job ad")
    assert isinstance(port, int) and port > 0
    body = pool.wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), 30, "the service answers on its host port")
    assert body == "hello-service\n"
    # the job's own .job.ad has it too, as HTCondor's docker universe writes it
    job_ads = [path for path in glob.glob(os.path.join(pool.execute_dir, "dir_*", "**", ".job.ad"), recursive=True)
               if f"web_HostPort = {port}" in open(path).read()]
    assert job_ads, "no .job.ad in the execute dir holds web_HostPort"
    import docker
    client = docker.APIClient(version="auto")
    try:
        [container] = [c for c in client.containers(filters={"label": f"org.condor_docker.cluster={job.cluster}"})]
        bindings = client.inspect_container(container["Id"])["NetworkSettings"]["Ports"]["8080/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, bindings     # the admin's address only
    finally:
        client.close()
    assert f"services web=127.0.0.1:{port}" in pool.agent_log()
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 0
    import classad2
    assert ad.get("web_HostPort") in (None, classad2.Value.Undefined), "HTCondor: undefined once the job ended"


def test_a_service_without_a_network_is_held_naming_the_fix(pool, pool_job_user):
    job = _submit(pool, pool_job_user, "none", seconds=1)
    try:
        ad = pool.wait(job, "held", timeout=120)
        assert "container_service_names needs a network" in ad.get("HoldReason", ""), ad.get("HoldReason")
    finally:
        pool.rm(job)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None
