"""Root in the pool-node images against their users (docs/TRUST-MODEL.md, docs/POOL-IN-CONTAINERS.md).

Each test attacks what pool-node does as root at start: the execute role's defaults,
the pool secret's owner and mode, injected config and authorized keys fetched over the
network, and the ssh user's home.  The hostile steps run as the real unprivileged
users (cdtest1/cdtest2), the pool-node code as root, as in the image.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from condor_docker.pool import entrypoint, injection, roles

PYTHON = "/opt/condor_docker/venv/bin/python"
TEST_ROOT = "/var/lib/condor_docker-test"


def node(role: str = "execute", **changes) -> roles.NodeOptions:
    base = dict(role=role, cm_host="127.0.0.1", cm_port=19618, port=19620, name="ep-trust",
                execute_dir="/srv/ep1/execute", network_interface="127.0.0.1", release_dir="/opt/htcondor",
                condor_ids="999.999")
    base.update(changes)
    return roles.NodeOptions(**base)


def htcondor_reads(tmp_path, options: roles.NodeOptions, knobs: list[str], injected=()) -> dict:
    """Write the node's config as pool-node does; HTCondor's own reader answers for the knobs."""
    path = entrypoint.write_config(options, list(injected), root=str(tmp_path / "pool"))
    code = ("import htcondor2, json, sys; "
            "print(json.dumps({k: str(htcondor2.param.get(k)) for k in sys.argv[1:]}))")
    done = subprocess.run([sys.executable, "-c", code, *knobs], env=dict(os.environ, CONDOR_CONFIG=path),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- 11: the execute role's defaults ---------------------------------------------------------
def test_pool_execute_role_refuses_host_network_and_requires_the_starter_proof(tmp_path):
    text = roles.role_config_d(node())["60-pool-node-execute.conf"]
    assert "CONDOR_DOCKER_ALLOW_HOST_NETWORK = false" in text.splitlines()
    assert "CONDOR_DOCKER_REQUIRE_STARTER = true" in text.splitlines()
    got = htcondor_reads(tmp_path, node(), ["CONDOR_DOCKER_ALLOW_HOST_NETWORK", "CONDOR_DOCKER_REQUIRE_STARTER"])
    assert got["CONDOR_DOCKER_ALLOW_HOST_NETWORK"].lower() == "false"
    assert got["CONDOR_DOCKER_REQUIRE_STARTER"].lower() == "true"


def test_a_site_can_still_allow_host_network_through_injected_config(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("CONDOR_DOCKER_ALLOW_HOST_NETWORK = true\nCONDOR_DOCKER_REQUIRE_STARTER = false\n")
    got = htcondor_reads(tmp_path, node(), ["CONDOR_DOCKER_ALLOW_HOST_NETWORK", "CONDOR_DOCKER_REQUIRE_STARTER"],
                         injection.collect([str(site)]))
    assert got == {"CONDOR_DOCKER_ALLOW_HOST_NETWORK": "true", "CONDOR_DOCKER_REQUIRE_STARTER": "false"}


@pytest.mark.parametrize("role", ["central-manager", "access-point"])
def test_other_roles_do_not_get_execute_knobs(role):
    files = roles.role_config_d(node(role, port=19618 if role == "central-manager" else 19620))
    assert not any("CONDOR_DOCKER_ALLOW_HOST_NETWORK" in text for text in files.values())
