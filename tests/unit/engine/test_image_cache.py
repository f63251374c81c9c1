"""The image cache's coordinator and LRU against counting fakes (no engine)."""
from __future__ import annotations

import os
import threading
import time

from condor_docker.core import settings
from condor_docker.core.failures import Code, Failure
from condor_docker.engine import image_cache
from condor_docker.engine.image_cache import ImageCache

MB = 1024 * 1024


class FakeEngine:
    """The four calls the cache uses; counts pulls and can hold a pull until released."""

    def __init__(self) -> None:
        self.present: dict[str, dict] = {}  # reference -> image listing entry
        self.pulls: list[str] = []
        self.removed: list[str] = []
        self.fail_with: Failure | None = None
        self.release = threading.Event()
        self.release.set()
        self.in_use_by_container: set[str] = set()
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, reference: str, size_mb: float = 1, pulled: bool = True) -> None:
        repo = reference.rsplit(":", 1)[0]
        self.present[reference] = {"Id": "sha256:" + reference, "Size": int(size_mb * MB),
                                   "RepoTags": [reference],
                                   "RepoDigests": [f"{repo}@sha256:00"] if pulled else []}

    def image_inspect(self, reference: str) -> dict | None:
        entry = self.present.get(reference)
        return None if entry is None else {"Id": entry["Id"], "RepoDigests": entry["RepoDigests"]}

    def pull(self, reference: str, *, timeout: float, stall_timeout: float, on_progress=None, **_options) -> dict:
        with self._lock:
            self.pulls.append(reference)
        if on_progress:
            on_progress({"id": "layer1", "status": "Downloading", "progressDetail": {"current": 1, "total": 2}})
            on_progress({"id": "layer1", "status": "Pull complete"})
        assert self.release.wait(10), "test never released the pull"
        if self.fail_with is not None:
            raise self.fail_with
        self.add(reference, self.sizes.get(reference, 1))
        return self.image_inspect(reference)

    def images(self) -> list[dict]:
        return list(self.present.values())

    def remove_image(self, reference: str) -> bool:
        if reference in self.in_use_by_container or reference not in self.present:
            return False
        del self.present[reference]
        self.removed.append(reference)
        return True


def make(tmp_path, engine=None, **knobs) -> tuple[ImageCache, FakeEngine]:
    engine = engine or FakeEngine()
    knobs.setdefault("CONDOR_DOCKER_STATE_DIR", str(tmp_path))
    return ImageCache(engine, settings.default_settings(**knobs)), engine


def run_concurrently(n: int, func) -> list:
    results: list = [None] * n
    started = threading.Barrier(n)

    def call(i: int) -> None:
        started.wait()
        try:
            results[i] = func()
        except Failure as err:
            results[i] = err

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results


def wait_for_waiters(cache: ImageCache, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        flights = list(cache._flights.values())
        if flights and flights[0].waiters == count:
            return
        time.sleep(0.01)
    raise AssertionError(f"never saw {count} waiters")


def test_eight_callers_share_one_pull(tmp_path):
    cache, engine = make(tmp_path)
    engine.release.clear()
    threads, results = run_concurrently(8, lambda: cache.ensure("reg:5000/a/b:1", "missing"))
    wait_for_waiters(cache, 7)
    engine.release.set()
    for t in threads:
        t.join()
    assert engine.pulls == ["reg:5000/a/b:1"]
    assert all(r is results[0] for r in results) and isinstance(results[0], dict)
    assert cache.in_flight() == 0 and cache.in_use() == set()


def test_a_failed_pull_is_shared_then_forgotten(tmp_path):
    cache, engine = make(tmp_path)
    engine.release.clear()
    engine.fail_with = Failure(Code.REGISTRY_UNREACHABLE, "Cannot pull image reg:5000/a/b:1: connection refused")
    threads, results = run_concurrently(8, lambda: cache.ensure("reg:5000/a/b:1", "missing"))
    wait_for_waiters(cache, 7)
    engine.release.set()
    for t in threads:
        t.join()
    assert len(engine.pulls) == 1
    assert all(r is engine.fail_with for r in results)
    # the entry is gone: the next request asks the engine again
    engine.fail_with = None
    assert cache.ensure("reg:5000/a/b:1", "missing")["Id"] == "sha256:reg:5000/a/b:1"
    assert len(engine.pulls) == 2


def test_present_image_is_not_pulled_and_not_counted_as_ours(tmp_path):
    cache, engine = make(tmp_path)
    engine.add("reg:5000/a/b:1")
    cache.ensure("reg:5000/a/b:1", "missing")
    assert engine.pulls == []
    assert cache._records["reg:5000/a/b:1"]["pulled"] is False
    cache.ensure("reg:5000/a/b:1", "always")
    assert engine.pulls == ["reg:5000/a/b:1"]


def test_lru_evicts_oldest_under_count_limit(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="2")
    for name in ("r/a:1", "r/b:1", "r/c:1"):
        cache.ensure(name, "missing")
    assert engine.removed == ["r/a:1"]
    with cache.use("r/b:1"):
        pass  # b is now newer than c
    cache.ensure("r/d:1", "missing")
    assert engine.removed == ["r/a:1", "r/c:1"]
    assert sorted(engine.present) == ["r/b:1", "r/d:1"]


def test_lru_respects_megabytes(tmp_path):
    cache, engine = make(tmp_path, CONDOR_DOCKER_IMAGE_CACHE_MB="5")
    engine.sizes = {"r/a:1": 2, "r/b:1": 2, "r/c:1": 2}
    for name in ("r/a:1", "r/b:1", "r/c:1"):
        cache.ensure(name, "missing")
    assert engine.removed == ["r/a:1"]
    assert sum(e["Size"] for e in engine.present.values()) <= 5 * MB


def test_last_use_survives_restart_and_sets_the_order(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="3")
    for name in ("r/a:1", "r/b:1", "r/c:1"):
        cache.ensure(name, "missing")
    with cache.use("r/a:1"):
        pass  # order now b, c, a
    restarted, _ = make(tmp_path, engine, DOCKER_IMAGE_CACHE_SIZE="2")
    assert restarted.collect_garbage() == ["r/b:1"]
    # without the stored times the restarted cache would know nothing of a's use
    assert restarted.last_use("r/a:1") > restarted.last_use("r/c:1")


def test_never_evicts_pinned_foreign_test_or_in_use(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1", CONDOR_DOCKER_PINNED_IMAGES="r/pin:1",
                         CONDOR_DOCKER_TEST_IMAGE="r/test:1")
    engine.add("r/foreign:1")
    engine.add("r/test:1")
    with cache.use("r/busy:1"):
        for name in ("r/pin:1", "r/busy:1", "r/other:1", "r/new:1"):
            cache.ensure(name, "missing")
        # over the limit of 1 (busy + new), but busy is in use and the rest are not ours to evict
        assert set(engine.present) == {"r/foreign:1", "r/test:1", "r/pin:1", "r/busy:1", "r/new:1"}
        assert engine.removed == ["r/other:1"]
    assert cache.collect_garbage() == ["r/new:1"]  # leaving use() made busy the newest


def test_gc_foreign_images_when_the_admin_allows(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1", CONDOR_DOCKER_GC_FOREIGN_IMAGES="true")
    engine.add("r/foreign:1")
    cache.ensure("r/new:1", "missing")
    assert engine.removed == ["r/foreign:1"]


def test_removal_refused_by_engine_is_skipped(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1")
    cache.ensure("r/a:1", "missing")
    engine.in_use_by_container.add("r/a:1")
    cache.ensure("r/b:1", "missing")
    assert engine.removed == [] and "r/a:1" in engine.present
    engine.in_use_by_container.clear()
    assert cache.collect_garbage() == ["r/a:1"]


def test_advertised_lists_usable_images(tmp_path):
    cache, engine = make(tmp_path)
    engine.add("r/pulled:1", size_mb=3)
    engine.add("r/loaded:1", size_mb=5, pulled=False)
    assert cache.advertised() == {"DockerImageCacheList": ["r/pulled:1"], "DockerImageCacheSizesMb": [3],
                                  "DockerCachedImageSizeMb": 3}
    trusting, _ = make(tmp_path, engine, DOCKER_TRUST_LOCAL_IMAGES="true")
    advertised = trusting.advertised()
    assert advertised["DockerImageCacheList"] == ["r/loaded:1", "r/pulled:1"]
    assert advertised["DockerImageCacheSizesMb"] == [5, 3]


def test_documented_rank_prefers_a_machine_holding_the_image(tmp_path):
    """The rank expression in docs/USERS.md, evaluated by classad2 against two advertised slots."""
    import re

    import classad2

    from condor_docker.core import ads
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "USERS.md")).read()
    rank = re.search(r"^rank = (.+)$", readme, re.M).group(1)
    holding, holding_engine = make(tmp_path)
    holding_engine.add("r/wanted:1", size_mb=300)
    empty, _ = make(tmp_path / "other")
    job = classad2.ClassAd({"DockerImage": "r/wanted:1"})
    job["Rank"] = classad2.ExprTree(rank)
    ranks = []
    for cache in (holding, empty):
        machine = ads.parse_ad(ads.format_ad_lines(cache.advertised()), "slot")
        ranks.append(job["Rank"].eval(scope=job, target=machine))
    assert ranks[0] > ranks[1]


def test_corrupt_state_file_starts_empty(tmp_path):
    (tmp_path / image_cache.STATE_FILE).write_text("{not json")
    cache, _ = make(tmp_path)
    assert cache._records == {}
    cache.ensure("r/a:1", "missing")
    assert "r/a:1" in (tmp_path / image_cache.STATE_FILE).read_text()


def test_progress_summary_counts_layers_and_bytes():
    import itertools
    clock = itertools.chain([0.0], itertools.repeat(6.0)).__next__
    progress = image_cache.PullProgress("r/a:1", clock=clock)
    reports: list[dict] = []
    progress.listeners.append(reports.append)
    progress({"id": "l1", "status": "Downloading", "progressDetail": {"current": MB, "total": 2 * MB}})
    progress({"id": "l2", "status": "Already exists"})
    assert progress.summary().startswith("1/2 layers done, 1.0/2.0 MB")
    assert len(reports) == 1 and reports[0]["bytes_done"] == MB and reports[0]["bytes_total"] == 2 * MB


def test_a_stalled_pull_still_reports_on_the_timer():
    """A pull the engine sends nothing for used to be silent until its first item."""
    progress = image_cache.PullProgress("r/stalled:1", interval=0.05)
    reports: list[dict] = []
    progress.listeners.append(reports.append)
    with progress.ticking():
        time.sleep(0.3)
    assert len(reports) >= 2 and progress.items == 0
    assert reports[0]["summary"].startswith("waiting for the registry, ")
    count = len(reports)
    time.sleep(0.1)
    assert len(reports) == count       # the timer stops with the block


def test_the_agents_pull_reports_on_the_timer_while_the_engine_sends_nothing(tmp_path, monkeypatch):
    cache, engine = make(tmp_path)
    monkeypatch.setattr(image_cache.PullProgress.__init__, "__defaults__", (0.05, time.monotonic))
    seen: list[dict] = []

    def silent_pull(reference, *, timeout, stall_timeout, on_progress=None, **_options):
        time.sleep(0.3)                      # a stalled registry: no progress item at all
        engine.add(reference, size_mb=1)
        return engine.image_inspect(reference)
    engine.pull = silent_pull
    cache.ensure("r/silent:1", "missing", seen.append)
    assert len(seen) >= 2 and seen[0]["summary"].startswith("waiting for the registry")
    count = len(seen)
    cache.ensure("r/silent:1", "missing", seen.append)     # present now: no pull, no timer
    time.sleep(0.15)
    assert len(seen) == count


def test_waiters_get_progress_of_the_leaders_pull_and_status_lists_it(tmp_path):
    cache, engine = make(tmp_path)
    release = threading.Event()
    seen: list[dict] = []

    def slow_pull(reference, *, timeout, stall_timeout, on_progress=None, **_options):
        on_progress({"id": "l1", "status": "Downloading", "progressDetail": {"current": 1, "total": 4}})
        release.wait(5)
        engine.add(reference, size_mb=1)
        return engine.image_inspect(reference)
    engine.pull = slow_pull
    leader = threading.Thread(target=cache.ensure, args=("r/slow:1", "missing"))
    leader.start()
    time.sleep(0.2)
    waiter = threading.Thread(target=cache.ensure, args=("r/slow:1", "missing", seen.append))
    waiter.start()
    time.sleep(0.2)
    [pull] = cache.pulls()
    assert pull["reference"] == "r/slow:1" and pull["waiters"] == 1 and pull["bytes_total"] == 4
    flight = next(iter(cache._flights.values()))
    flight.progress.report()          # what the interval timer does every few seconds
    release.set()
    leader.join(5)
    waiter.join(5)
    assert seen and seen[0]["bytes_done"] == 1 and cache.pulls() == []
