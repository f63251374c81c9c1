"""Every container label condor_docker sets or reads, and the engine filters built on them.

The keys and values are public (admins, `docker ps --filter`, other agents on the
same engine read them): never rename one.  Set at create (core/spec.py):

    org.condor_docker.managed      "true": condor_docker made it (nothing else is touched)
    org.condor_docker.agent        which agent instance owns it (CONDOR_DOCKER_AGENT_ID)
    org.condor_docker.cluster      the job's ClusterId
    org.condor_docker.proc         the job's ProcId
    org.condor_docker.slot         the slot (e.g. slot1_1)
    org.condor_docker.owner        the job's Owner
    org.condor_docker.uid          the uid the job runs as (who may act on it)
    org.condor_docker.scratch_dir  the job's scratch dir
    org.condor_docker.image        the image as the job named it

Set by the agent (agent/jobs.py):

    org.condor_docker.launcher_pid   the launcher whose connection holds the container
    org.condor_docker.starter_pid    the proven condor_starter of the job
    org.condor_docker.cgroup_parent  the launcher's job cgroup the container was put under

And on the health self-test's container (engine/health.py):

    org.condor_docker.selftest     "true"
"""
from __future__ import annotations

LABEL_PREFIX = "org.condor_docker."

MANAGED_LABEL = LABEL_PREFIX + "managed"
AGENT_LABEL = LABEL_PREFIX + "agent"
CLUSTER_LABEL = LABEL_PREFIX + "cluster"
PROC_LABEL = LABEL_PREFIX + "proc"
SLOT_LABEL = LABEL_PREFIX + "slot"
OWNER_LABEL = LABEL_PREFIX + "owner"
UID_LABEL = LABEL_PREFIX + "uid"
SCRATCH_DIR_LABEL = LABEL_PREFIX + "scratch_dir"
IMAGE_LABEL = LABEL_PREFIX + "image"
LAUNCHER_PID_LABEL = LABEL_PREFIX + "launcher_pid"
LAUNCHER_START_LABEL = LABEL_PREFIX + "launcher_start"   # its start time (host/procs.py): not a reused pid
STARTER_PID_LABEL = LABEL_PREFIX + "starter_pid"
CGROUP_PARENT_LABEL = LABEL_PREFIX + "cgroup_parent"
SELFTEST_LABEL = LABEL_PREFIX + "selftest"


def label_filter(*pairs: tuple[str, object]) -> dict:
    """An engine list filter matching every (label, value) pair."""
    return {"label": [f"{key}={value}" for key, value in pairs]}


def managed_filter(*pairs: tuple[str, object]) -> dict:
    """Containers condor_docker made (and matching every further (label, value) pair)."""
    return label_filter((MANAGED_LABEL, "true"), *pairs)


def own_containers_filter(agent_id: str, *pairs: tuple[str, object]) -> dict:
    """The managed containers of one agent instance (and matching every further pair)."""
    return managed_filter((AGENT_LABEL, agent_id), *pairs)


def selftest_filter() -> dict:
    """The health self-test's containers."""
    return label_filter((SELFTEST_LABEL, "true"))
