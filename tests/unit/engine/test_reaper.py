"""The reaper's decisions and sweep against fake container lists (no engine)."""
from __future__ import annotations

from condor_docker.core import settings
from condor_docker.core.failures import Code, Failure
from condor_docker.core.labels import LAUNCHER_PID_LABEL
from condor_docker.engine import reaper
from condor_docker.engine.reaper import Reaper

NOW = 1_000_000.0
AGENT_ID = settings.default_settings().agent_id
OURS = {"org.condor_docker.managed": "true", "org.condor_docker.agent": AGENT_ID}


def container(cid: str, state: str = "running", age: float = 600, labels=None) -> dict:
    return {"Id": cid * 8, "Names": [f"/HTCJob_{cid}"], "State": state, "Created": int(NOW - age),
            "Labels": dict(OURS if labels is None else labels)}


class FakeEngine:
    def __init__(self, containers: list[dict]) -> None:
        self.containers = containers
        self.removed: list[str] = []
        self.list_fails = False

    def managed_containers(self, extra_filters: dict | None = None) -> list[dict]:
        """Applies label filters as the engine does (every key=value must match)."""
        if self.list_fails:
            raise Failure(Code.ENGINE_UNAVAILABLE, "the Docker engine does not answer")
        wanted = (extra_filters or {}).get("label") or ["org.condor_docker.managed=true"]
        pairs = [item.split("=", 1) for item in wanted]
        return [c for c in self.containers if all((c["Labels"] or {}).get(k) == v for k, v in pairs)]

    def remove(self, cid: str) -> bool:
        self.removed.append(cid)
        return True


def make(containers, tracked=(), healthy=True, grace="60") -> tuple[Reaper, FakeEngine]:
    engine = FakeEngine(containers)
    r = Reaper(engine, settings.default_settings(CONDOR_DOCKER_REAP_GRACE=grace),
               tracked=lambda: set(tracked), is_healthy=lambda: healthy)
    r.clock = lambda: NOW
    r.alive = lambda pid: pid == 4242
    return r, engine


def test_decisions_over_a_mixed_list():
    tracked = container("t")
    young = container("y", age=5)
    old = container("o", age=600)
    stopped_young = container("s", state="exited", age=1)
    foreign = container("f", labels={})
    foreign_other_value = container("g", labels={"org.condor_docker.managed": "false"})
    r, engine = make([tracked, young, old, stopped_young, foreign, foreign_other_value], tracked={tracked["Id"]})
    assert sorted(r.sweep()) == sorted([old["Id"], stopped_young["Id"]])
    assert sorted(engine.removed) == sorted([old["Id"], stopped_young["Id"]])


def test_tracked_by_name_or_short_id():
    by_name, by_short = container("n"), container("s")
    r, engine = make([by_name, by_short], tracked={"HTCJob_n", by_short["Id"][:12]})
    assert r.sweep() == [] and engine.removed == []


def test_old_untracked_with_live_launcher_is_kept():
    alive = container("a", labels={**OURS, LAUNCHER_PID_LABEL: "4242"})
    dead = container("d", labels={**OURS, LAUNCHER_PID_LABEL: "4243"})
    r, engine = make([alive, dead])
    assert r.sweep() == [dead["Id"]]


def test_stopped_with_live_launcher_is_kept():
    waited_for = container("w", state="exited", labels={**OURS, LAUNCHER_PID_LABEL: "4242"})
    r, engine = make([waited_for])
    assert r.sweep() == []


def test_created_container_counts_as_starting():
    decision = reaper.decide(container("c", state="created", age=5), set(), NOW, 60)
    assert not decision.reap and "old" in decision.why


def test_no_sweep_while_engine_unhealthy():
    r, engine = make([container("o")], healthy=False)
    assert r.sweep() == [] and engine.removed == []


def test_listing_failure_warns_once(caplog):
    r, engine = make([container("o")])
    engine.list_fails = True
    with caplog.at_level("DEBUG", logger="condor_docker.reaper"):
        r.sweep()
        r.sweep()
        engine.list_fails = False
        r.sweep()
    warnings = [rec for rec in caplog.records if rec.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot list containers" in warnings[0].getMessage()
    assert any("reaper recovered" in rec.getMessage() for rec in caplog.records)
    assert engine.removed == [container("o")["Id"]]


def test_sibling_agents_containers_are_never_reaped():
    """Two execute containers share one host engine: each reaps only its own."""
    sibling = container("x", state="exited", labels={**OURS, "org.condor_docker.agent": "other-node-1234"})
    unlabelled = container("u", state="exited", labels={"org.condor_docker.managed": "true"})
    mine = container("m", state="exited")
    r, engine = make([sibling, unlabelled, mine])
    assert r.sweep() == [mine["Id"]]
    decision = reaper.decide(sibling, set(), NOW, 60, agent_id=AGENT_ID)
    assert not decision.reap and "another agent's (other-node-1234)" in decision.why


def test_agent_id_default_differs_per_execute_dir_and_knob_wins():
    one = settings.default_settings(CONDOR_DOCKER_EXECUTE_DIRS="/srv/ep1/execute").agent_id
    two = settings.default_settings(CONDOR_DOCKER_EXECUTE_DIRS="/srv/ep2/execute").agent_id
    assert one != two and one == settings.default_settings(CONDOR_DOCKER_EXECUTE_DIRS="/srv/ep1/execute").agent_id
    assert settings.default_settings(CONDOR_DOCKER_AGENT_ID="ep-7").agent_id == "ep-7"
def test_containers_of_another_execute_dir_are_never_reaped():
    """Two agents on one engine (two execute points, or a test pool beside another) leave each other alone."""
    from condor_docker.engine.reaper import decide

    mine = container("a", state="exited", labels={**OURS, "org.condor_docker.scratch_dir": "/x/execute/dir_1"})
    other = container("b", state="exited", labels={**OURS, "org.condor_docker.scratch_dir": "/y/execute/dir_1"})
    assert decide(mine, set(), 1e9, 60, execute_dirs=["/x/execute"]).reap is True
    decision = decide(other, set(), 1e9, 60, execute_dirs=["/x/execute"])
    assert decision.reap is False and decision.why == "another execute dir's"


def test_a_launcher_pid_taken_over_by_another_process_does_not_keep_the_container():
    # an independent review: the job's user forked until it held the dead launcher's pid (9 s here)
    import os

    from condor_docker.core.labels import LAUNCHER_START_LABEL
    from condor_docker.host import procs
    me = os.getpid()
    mine = procs.start_ticks(me)
    assert mine is not None and procs.start_ticks(2 ** 22 + 7) is None
    same = container("a", labels={**OURS, LAUNCHER_PID_LABEL: str(me), LAUNCHER_START_LABEL: str(mine)})
    reused = container("b", labels={**OURS, LAUNCHER_PID_LABEL: str(me), LAUNCHER_START_LABEL: str(mine + 1)})
    older = container("c", labels={**OURS, LAUNCHER_PID_LABEL: str(me)})   # made before the start label
    decisions = reaper.plan([same, reused, older], set(), NOW, 60)
    assert [d.reap for d in decisions] == [False, True, False], decisions


def test_labels_that_are_not_ascii_digits_never_stop_a_sweep():
    # "²".isdigit() is True and int("²") raises: one such label aborted every sweep
    from condor_docker.core.labels import LAUNCHER_START_LABEL
    odd = [container(c, labels={**OURS, LAUNCHER_PID_LABEL: pid, LAUNCHER_START_LABEL: start})
           for c, pid, start in (("a", "1", "²"), ("b", "١", ""), ("c", "9" * 40, "1"))]
    assert [d.reap for d in reaper.plan(odd, set(), NOW, 60, alive=lambda *_: True)] == [False, True, True]
