"""`condor_docker status`: what the agent gathers (from fakes) and how it reads."""
from __future__ import annotations

import json
from dataclasses import dataclass

from condor_docker.admin import status
from condor_docker.agent import status as agent_status
from condor_docker.core.failures import Code, Failure


@dataclass
class State:
    healthy: bool = True
    version: str | None = "Docker version 20.10.24"
    reason: str | None = None


class Health:
    def __init__(self, state):
        self.state = state

    def current(self):
        return self.state


class Engine:
    def __init__(self, containers=None, error=None):
        self.containers, self.error = containers or [], error

    def managed_containers(self):
        if self.error:
            raise self.error
        return self.containers


class Cache:
    def pulls(self):
        return [{"reference": "r/big:1", "bytes_done": 50 * 1024 * 1024, "bytes_total": 200 * 1024 * 1024,
                 "layers_done": 1, "layers": 3, "seconds": 12.0, "waiters": 2, "policy": "missing"}]

    def advertised(self):
        return {"DockerImageCacheList": ["r/a:1", "r/b:2"], "DockerImageCacheSizesMb": [3, 40],
                "DockerCachedImageSizeMb": 43}

    def in_use(self):
        return {"r/b:2"}

    def last_use(self, reference):
        return 1000.0


def container(name, uid):
    return {"Names": [f"/{name}"], "Image": "r/b:2", "State": "running", "Status": "Up 3 minutes",
            "Labels": {"org.condor_docker.uid": str(uid), "org.condor_docker.cluster": "12",
                       "org.condor_docker.proc": "0"}}


def test_root_sees_everything_in_one_readable_report():
    jobs = [{"job": "12.0", "container": "HTCJob_12_0_slot1_1", "uid": 1001, "memory_mb": 128, "since": 900.0}]
    report = agent_status.gather(health=Health(State()), jobs=jobs, cache=Cache(), uid=0,
                           engine=Engine([container("HTCJob_12_0_slot1_1", 1001), container("HTCJob_13_0_slot1_2", 1002)]))
    text = status.render(report, now=1100.0)
    assert text.startswith("engine: healthy, Docker version 20.10.24")
    assert "HTCJob_12_0_slot1_1  12.0  1001  running  Up 3 minutes" in text and "HTCJob_13_0_slot1_2" in text
    assert "r/big:1  50.0     200.0     1/3     12.0     2" in text
    assert "image cache (43 MB)" in text and "r/b:2  40       yes     100 s ago" in text
    assert json.loads(json.dumps(report)) == report      # --json prints exactly this


def test_a_user_sees_only_their_containers_and_errors_are_named():
    report = agent_status.gather(health=Health(State(False, None, "the engine does not answer")), jobs=[], cache=Cache(),
                           uid=1002, engine=Engine([container("HTCJob_12_0_slot1_1", 1001),
                                                    container("HTCJob_13_0_slot1_2", 1002)]))
    assert [c["name"] for c in report["containers"]] == ["HTCJob_13_0_slot1_2"]
    broken = agent_status.gather(health=Health(State(False, None, "the engine does not answer")), jobs=[], cache=Cache(),
                           uid=0, engine=Engine(error=Failure(Code.ENGINE_UNAVAILABLE, "socket gone")))
    text = status.render(broken)
    assert "engine: UNHEALTHY (the engine does not answer)" in text and "error: socket gone" in text
    assert "jobs\n(none)" in text


def test_a_socket_the_user_may_not_open_is_not_called_a_missing_agent():
    from condor_docker.wire import protocol
    try:
        raise protocol.AgentUnavailable("the condor_docker agent does not answer on /x: Permission denied") \
            from PermissionError(13, "Permission denied")
    except protocol.AgentUnavailable as err:
        assert "you may not open the agent's socket" in status._agent_hint(err)
    assert "is the agent running" in status._agent_hint(protocol.AgentUnavailable("no such file"))
