"""agent/jobs.cleanup_starter_job: the job to clean up comes from the peer's starter, never from the job."""
from __future__ import annotations

import pytest

from condor_docker.agent import jobs
from condor_docker.agent.context import RequestContext
from condor_docker.agent.starter_proof import StarterProof
from condor_docker.core.labels import (
    AGENT_LABEL,
    CLUSTER_LABEL,
    PROC_LABEL,
    STARTER_PID_LABEL,
    UID_LABEL,
)
from condor_docker.core.settings import default_settings
from condor_docker.wire import ops


class FakeEngine:
    """Answers managed_containers with every container it has, whatever the filter (the labels must decide)."""

    def __init__(self, containers: list[dict]) -> None:
        self.containers = containers
        self.filters: list[dict] = []
        self.removed: list[str] = []

    def managed_containers(self, filters: dict) -> list[dict]:
        self.filters.append(filters)
        return list(self.containers)

    def remove(self, container_id: str) -> bool:
        self.removed.append(container_id)
        return True


def container(cid: str, uid: int, starter: int, cluster: int = 28) -> dict:
    return {"Id": cid, "Names": [f"/HTCJob{cluster}_0_slot1_1_{cid}"],
            "Labels": {UID_LABEL: str(uid), STARTER_PID_LABEL: str(starter), CLUSTER_LABEL: str(cluster),
                       PROC_LABEL: "0"}}


@pytest.fixture
def service():
    settings = default_settings()
    engine = FakeEngine([container("mine", 1001, 4242), container("other-user", 1002, 4242),
                         container("other-starter", 1001, 5353, cluster=29)])
    return jobs.JobService(settings, engine, cache=None, machine=object(), slots=object())  # type: ignore[arg-type]


def ask(service, monkeypatch, uid: int, starter: int | None) -> tuple[dict, RequestContext]:
    monkeypatch.setattr(jobs.starter_proof, "find_starter",
                        lambda pid, scratch, trusted: None if starter is None else StarterProof(starter, "slot1_1"))
    ctx = RequestContext(ops.CleanupStarterJob.op, 777, uid, uid, None, [])   # type: ignore[arg-type]
    return service.cleanup_starter_job(ctx, ops.CleanupStarterJob()), ctx


def test_only_the_callers_starters_containers_of_its_uid_are_removed(service, monkeypatch):
    reply, ctx = ask(service, monkeypatch, 1001, 4242)
    assert reply == {"ok": True, "removed": ["HTCJob28_0_slot1_1_mine"]}
    assert service.engine.removed == ["mine"]
    labels = service.engine.filters[0]["label"]
    assert f"{STARTER_PID_LABEL}=4242" in labels and f"{UID_LABEL}=1001" in labels
    assert f"{AGENT_LABEL}={service.settings.agent_id}" in labels
    assert (ctx.job, ctx.container, ctx.extra["starter"]) == ("28.0", "HTCJob28_0_slot1_1_mine", "4242")


def test_another_starter_of_the_same_uid_removes_nothing_of_this_one(service, monkeypatch):
    reply, _ = ask(service, monkeypatch, 1001, 9999)
    assert reply == {"ok": True, "removed": []} and service.engine.removed == []


def test_root_under_a_starter_removes_that_starters_containers_of_any_uid(service, monkeypatch):
    reply, _ = ask(service, monkeypatch, 0, 4242)
    assert service.engine.removed == ["mine", "other-user"]
    assert not any(label.startswith(UID_LABEL) for label in service.engine.filters[0]["label"])


def test_no_starter_is_the_named_refusal_and_asks_the_engine_nothing(service, monkeypatch):
    reply, _ = ask(service, monkeypatch, 1001, None)
    assert reply["ok"] is False and reply["failure"]["code"] == 16
    assert ops.error_of(reply, ops.CleanupStarterJob.op) == ops.NO_STARTER
    assert "no condor_starter among its ancestors" in reply["failure"]["reason"]
    assert service.engine.filters == [] and service.engine.removed == []
