"""The image cache on the real engine and the loopback registry (127.0.0.1:5000)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.engine

if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
    pytest.skip("no Docker engine answers (run scripts/engine-up.sh as root)", allow_module_level=True)


from condor_docker.core import settings  # noqa: E402
from condor_docker.core.failures import Code, Failure, Kind  # noqa: E402
from condor_docker.engine.client import Engine  # noqa: E402
from condor_docker.engine.image_cache import ImageCache  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from enginetest import MB, REGISTRY, RUN  # noqa: E402
from stall_registry import StallRegistry, unused_port  # noqa: E402


def _pull_events(api, since: float, reference: str) -> int:
    """The engine's image pull events for `reference`: Docker names it as the event's id and its
    actor's name, Podman 4.3 only as the actor's name (its compat events have no id)."""
    time.sleep(1.1)  # the engine's event times are whole seconds
    events = api.events(since=int(since) - 1, until=int(time.time()) + 1,
                        filters={"type": "image", "event": "pull"}, decode=True)
    return sum(1 for e in events if e.get("Action", e.get("status")) == "pull"
               and reference in (e.get("id"), ((e.get("Actor") or {}).get("Attributes") or {}).get("name")))


def _cache(tmp_path, engine=None, **knobs) -> ImageCache:
    """The cache on the engine under test (a test without the engine fixture runs on Docker only)."""
    knobs.setdefault("CONDOR_DOCKER_STATE_DIR", str(tmp_path))
    return ImageCache(engine or Engine(), settings.default_settings(**knobs))


def test_eight_concurrent_ensures_pull_once(engine, api, pushed, tmp_path):
    reference = pushed("flight")
    cache = _cache(tmp_path, engine)
    since = time.time()
    results: list = [None] * 8
    barrier = threading.Barrier(8)

    def call(i: int) -> None:
        barrier.wait()
        results[i] = cache.ensure(reference, "missing")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) and r["Id"] == results[0]["Id"] for r in results)
    assert _pull_events(api, since, reference) == 1
    # the flight is over: a later request asks the engine again, and it is present now
    assert cache.ensure(reference, "missing")["Id"] == results[0]["Id"]
    assert _pull_events(api, since, reference) == 1


def test_stalled_registry_times_out_as_requeue(engine, tmp_path):
    cache = _cache(tmp_path, engine, CONDOR_DOCKER_PULL_STALL_TIMEOUT="3", CONDOR_DOCKER_PULL_TIMEOUT="60")
    with StallRegistry() as registry:
        started = time.monotonic()
        with pytest.raises(Failure) as caught:
            cache.ensure(registry.reference(f"condor-docker-test/stall-{RUN}:1"), "missing")
        elapsed = time.monotonic() - started
        assert any("/manifests/" in path for path in registry.requests), registry.requests
    assert caught.value.code is Code.PULL_TIMEOUT and caught.value.kind is Kind.REQUEUE
    assert 2.5 <= elapsed <= 20, elapsed


def test_closed_port_is_registry_unreachable(engine, tmp_path):
    cache = _cache(tmp_path, engine)
    reference = f"127.0.0.1:{unused_port()}/condor-docker-test/closed-{RUN}:1"
    with pytest.raises(Failure) as caught:
        cache.ensure(reference, "missing")
    assert caught.value.code is Code.REGISTRY_UNREACHABLE and caught.value.kind is Kind.REQUEUE
    assert "refused" in caught.value.reason


def test_unknown_manifest_holds_with_engine_words(engine, tmp_path):
    cache = _cache(tmp_path, engine)
    reference = f"{REGISTRY}/condor-docker-test/no-such-{RUN}:1"
    with pytest.raises(Failure) as caught:
        cache.ensure(reference, "missing")
    assert caught.value.code is Code.IMAGE_NOT_FOUND and caught.value.kind is Kind.HOLD
    assert "manifest unknown" in caught.value.reason or "not found" in caught.value.reason


def test_gc_limits_and_lru_across_restart(engine, api, pushed, tmp_path):
    a, b, c = (pushed(name, size_mb=1.2) for name in ("gc-a", "gc-b", "gc-c"))
    first = _cache(tmp_path, engine, DOCKER_IMAGE_CACHE_SIZE="2")
    first.ensure(a, "missing")
    first.ensure(b, "missing")
    with first.use(a):
        pass  # a is now more recent than b

    restarted = _cache(tmp_path, engine, DOCKER_IMAGE_CACHE_SIZE="2")
    restarted.ensure(c, "missing")  # over the count: b, the least recently used, goes
    tags = {t for image in api.images() for t in image.get("RepoTags") or ()}
    assert a in tags and c in tags and b not in tags

    by_bytes = _cache(tmp_path, engine, DOCKER_IMAGE_CACHE_SIZE="10", CONDOR_DOCKER_IMAGE_CACHE_MB="2")
    assert by_bytes.collect_garbage() == [a]
    ours = [i for i in api.images() if set(i.get("RepoTags") or ()) & {a, b, c}]
    assert len(ours) == 1 and sum(i["Size"] for i in ours) <= 2 * MB
    assert by_bytes.advertised()["DockerImageCacheList"].count(c) == 1


@pytest.mark.parametrize("registry_kind", ["stall", "trickle"])
def test_overall_timeout_shorter_than_stall_timeout_ends_the_pull_on_time(engine, tmp_path, registry_kind):
    """The overall deadline holds even while no item (stall) or only slow progress (trickle) arrives."""
    from stall_registry import TrickleRegistry
    cache = _cache(tmp_path, engine, CONDOR_DOCKER_PULL_STALL_TIMEOUT="60", CONDOR_DOCKER_PULL_TIMEOUT="4")
    registry = StallRegistry() if registry_kind == "stall" else TrickleRegistry()
    with registry:
        started = time.monotonic()
        with pytest.raises(Failure) as caught:
            cache.ensure(registry.reference(f"condor-docker-test/{registry_kind}-{RUN}:1"), "missing")
        elapsed = time.monotonic() - started
        if registry_kind == "trickle":  # the layer really was being fetched, slowly
            assert any("/blobs/" in path for path in registry.requests), registry.requests
    assert caught.value.code is Code.PULL_TIMEOUT and caught.value.kind is Kind.REQUEUE
    assert "not done after 4 s" in caught.value.reason
    assert 3.5 <= elapsed <= 15, elapsed
