"""Trust boundary round 2, the image cache: canonical names, the registry lists, the size cap, root's credentials.

The fake engine names images as the real one does (RepoTags in the familiar
form: `docker.io/library/x:1` is listed as `x:1`), so a cache that keys by the
job's spelling is caught here; tests/engine/test_image_trust_engine.py checks
the same against the real engine and the loopback registry.
"""
from __future__ import annotations

import json

import pytest

from condor_docker.core import imageref, settings
from condor_docker.core.failures import Code, Failure
from condor_docker.engine.image_cache import ImageCache

MB = 1024 * 1024


def _engine_name(reference: str) -> str:
    """How dockerd lists a reference (distribution/reference FamiliarString), written independently."""
    name = reference if ("@" in reference or ":" in reference.rsplit("/", 1)[-1]) else reference + ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name   # no registry named: Docker Hub
    for hub in ("docker.io/", "index.docker.io/"):
        if name.startswith(hub):
            name = name[len(hub):]
            if name.startswith("library/") and name.count("/") == 1:
                name = name[len("library/"):]
    return name


class NamingEngine:
    """The four calls the cache uses, naming images as dockerd does."""

    def __init__(self) -> None:
        self.present: dict[str, dict] = {}
        self.pulls: list[str] = []
        self.removed: list[str] = []
        self.pull_kwargs: list[dict] = []
        self.progress: list[dict] = []
        self.size = MB
        self.tag_first = False   # a stopped pull whose image the engine tagged anyway

    def image_inspect(self, reference: str) -> dict | None:
        entry = self.present.get(_engine_name(reference))
        return None if entry is None else {"Id": entry["Id"], "RepoDigests": entry["RepoDigests"],
                                           "Size": entry["Size"]}

    def pull(self, reference: str, *, timeout: float, stall_timeout: float, on_progress=None, **kwargs) -> dict:
        self.pulls.append(reference)
        self.pull_kwargs.append(kwargs)
        name = _engine_name(reference)
        entry = {"Id": "sha256:" + name, "Size": self.size, "RepoTags": [name],
                 "RepoDigests": [name.rsplit(":", 1)[0] + "@sha256:00"]}
        if self.tag_first:
            self.present[name] = entry
        for item in self.progress:
            if on_progress:
                on_progress(item)
        self.present[name] = entry
        return self.image_inspect(name)

    def images(self) -> list[dict]:
        return list(self.present.values())

    def remove_image(self, reference: str) -> bool:
        name = _engine_name(reference)
        if name not in self.present:
            return False
        del self.present[name]
        self.removed.append(name)
        return True


def make(tmp_path, **knobs) -> tuple[ImageCache, NamingEngine]:
    engine = NamingEngine()
    knobs.setdefault("CONDOR_DOCKER_STATE_DIR", str(tmp_path))
    return ImageCache(engine, settings.default_settings(**knobs)), engine


# -- a. one canonical name -------------------------------------------------------------
@pytest.mark.parametrize("spelling, listed", [
    ("docker.io/library/busybox:1", "busybox:1"),
    ("index.docker.io/library/busybox:1", "busybox:1"),
    ("library/busybox:1", "busybox:1"),
    ("busybox", "busybox:latest"),
    ("docker.io/someone/tool", "someone/tool:latest"),
    ("docker.io/library/a/b:2", "library/a/b:2"),
    ("127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y:latest"),
    ("registry.example:443/x:1", "registry.example:443/x:1"),   # the engine keeps the port as written
    ("docker.io/library/busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
])
def test_canonical_is_what_the_engine_lists(spelling, listed):
    assert imageref.canonical(spelling) == listed == _engine_name(spelling)


def test_two_spellings_share_one_record_and_are_evicted(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1")
    cache.ensure("docker.io/library/busybox:1", "missing")
    cache.ensure("busybox:1", "missing")
    assert len(engine.pulls) == 1
    assert set(json.loads((tmp_path / "image_cache.json").read_text())["images"]) == {"busybox:1"}
    cache.ensure("127.0.0.1:5000/other:1", "missing")   # over the count: busybox:1 is the LRU
    assert engine.removed == ["busybox:1"]


def test_in_use_under_another_spelling_is_not_evicted(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1")
    with cache.use("docker.io/library/busybox:1"):
        cache.ensure("index.docker.io/library/busybox:1", "missing")
        assert cache.in_use() == {"busybox:1"}
        cache.ensure("127.0.0.1:5000/other:1", "missing")
        assert "busybox:1" in engine.present and engine.removed == []


def test_pins_and_the_test_image_in_any_spelling_are_never_evicted(tmp_path):
    cache, engine = make(tmp_path, DOCKER_IMAGE_CACHE_SIZE="1",
                         CONDOR_DOCKER_PINNED_IMAGES="docker.io/library/pinned",
                         CONDOR_DOCKER_TEST_IMAGE="index.docker.io/library/selftest:1")
    for reference in ("pinned:latest", "selftest:1", "a:1", "b:1"):
        cache.ensure(reference, "missing")
    assert "pinned:latest" in engine.present and "selftest:1" in engine.present
    assert engine.removed == ["a:1"]


def test_old_state_file_spellings_are_merged(tmp_path):
    (tmp_path / "image_cache.json").write_text(json.dumps({"images": {
        "docker.io/library/busybox:1": {"pulled": True, "last_use": 5.0},
        "busybox:1": {"pulled": False, "last_use": 7.0}}}))
    cache, _ = make(tmp_path)
    assert cache.last_use("index.docker.io/library/busybox:1") == 7.0
    assert cache._records == {"busybox:1": {"pulled": True, "last_use": 7.0}}


def test_a_hub_spelling_of_a_pulled_image_is_not_local_only(tmp_path):
    from condor_docker.engine.images import is_local_only
    assert not is_local_only({"RepoDigests": ["busybox@sha256:00"]}, "docker.io/library/busybox:1")


# -- c. CONDOR_DOCKER_ALLOWED_REGISTRIES ----------------------------------------------------
@pytest.mark.parametrize("reference, allowed, ok", [
    ("busybox:1", ("docker.io",), True),
    ("docker.io/library/busybox:1", ("index.docker.io",), True),
    ("index.docker.io/library/busybox", ("https://index.docker.io/v1/",), True),
    ("Registry.Example/x:1", ("registry.example",), True),          # a host name has no case
    ("registry.example:5000/x:1", ("registry.example:5000",), True),
    ("registry.example/x:1", ("registry.example:443",), False),      # host:port compared exactly
    ("registry.example:443/x:1", ("registry.example",), False),
    ("127.0.0.1:5001/x:1", ("127.0.0.1:5000",), False),
    ("busybox:1", ("127.0.0.1:5000",), False),
    ("evil.example/x:1", (), True),                                  # empty: any registry
])
def test_registry_allow_list(reference, allowed, ok):
    if ok:
        imageref.check_registry(reference, allowed)
        return
    with pytest.raises(Failure) as caught:
        imageref.check_registry(reference, allowed)
    assert caught.value.code is Code.REGISTRY_NOT_ALLOWED and caught.value.is_hold
    assert imageref.registry_host(reference) in caught.value.reason
    assert "CONDOR_DOCKER_ALLOWED_REGISTRIES" in caught.value.reason


def test_allowed_registries_knob_is_canonical_and_validated():
    values = settings.default_settings(CONDOR_DOCKER_ALLOWED_REGISTRIES="index.docker.io, Reg.Example:5000 docker.io")
    assert values.allowed_registries == ("docker.io", "reg.example:5000")
    assert settings.default_settings().allowed_registries == ()
    with pytest.raises(settings.SettingsError, match="CONDOR_DOCKER_ALLOWED_REGISTRIES"):
        settings.default_settings(CONDOR_DOCKER_ALLOWED_REGISTRIES="bad_host!")


def test_a_present_image_from_another_registry_is_refused_before_any_pull(tmp_path):
    cache, engine = make(tmp_path, CONDOR_DOCKER_ALLOWED_REGISTRIES="127.0.0.1:5000")
    engine.pull("evil.example/x:1", timeout=1, stall_timeout=1)       # present already
    engine.pulls.clear()
    with pytest.raises(Failure) as caught:
        cache.ensure("evil.example/x:1", "missing")
    assert caught.value.code is Code.REGISTRY_NOT_ALLOWED
    assert "evil.example" in caught.value.reason and engine.pulls == []
    cache.ensure("127.0.0.1:5000/x:1", "missing")
    assert engine.pulls == ["127.0.0.1:5000/x:1"]


# -- b. CONDOR_DOCKER_MAX_IMAGE_SIZE_MB ------------------------------------------------------
def _downloading(layer: str, total_mb: float) -> dict:
    return {"id": layer, "status": "Downloading", "progressDetail": {"current": 1, "total": int(total_mb * MB)}}


def test_a_pull_whose_layers_add_up_over_the_cap_is_stopped(tmp_path):
    cache, engine = make(tmp_path, CONDOR_DOCKER_MAX_IMAGE_SIZE_MB="5")
    engine.progress = [_downloading("l1", 3), _downloading("l1", 3), _downloading("l2", 2.5),
                       {"id": "l3", "status": "Pull complete"}]
    engine.tag_first = True
    with pytest.raises(Failure) as caught:
        cache.ensure("127.0.0.1:5000/big:1", "missing")
    failure = caught.value
    assert failure.code is Code.IMAGE_TOO_LARGE and failure.is_hold
    assert "5.5 MB" in failure.reason and "5 MB" in failure.reason
    assert "CONDOR_DOCKER_MAX_IMAGE_SIZE_MB" in failure.reason and "\n" not in failure.reason
    # the engine went on to tag it in this fake: what a stopped pull left is removed
    assert engine.removed == ["127.0.0.1:5000/big:1"] and not engine.present


def test_a_pulled_image_over_the_cap_is_held_and_removed(tmp_path):
    cache, engine = make(tmp_path, CONDOR_DOCKER_MAX_IMAGE_SIZE_MB="1")
    engine.size = 2 * MB          # no Downloading items (every layer already here): the inspect size counts
    with pytest.raises(Failure) as caught:
        cache.ensure("127.0.0.1:5000/big:1", "missing")
    assert caught.value.code is Code.IMAGE_TOO_LARGE and "is 2.0 MB" in caught.value.reason
    assert not engine.present


def test_under_the_cap_or_no_cap_pulls(tmp_path):
    engine_progress = [_downloading("l1", 3)]
    capped, engine = make(tmp_path, CONDOR_DOCKER_MAX_IMAGE_SIZE_MB="4")
    engine.progress = engine_progress
    assert capped.ensure("127.0.0.1:5000/ok:1", "missing")
    uncapped, engine = make(tmp_path / "u")
    engine.progress, engine.size = [_downloading("l1", 30000)], 30000 * MB
    assert uncapped.ensure("127.0.0.1:5000/huge:1", "missing")
    assert settings.default_settings().max_image_size_mb == 0


def test_a_present_image_over_the_cap_is_not_removed(tmp_path):
    """The cap is per pull: an always-pull of an image already here holds the job but keeps the image."""
    cache, engine = make(tmp_path, CONDOR_DOCKER_MAX_IMAGE_SIZE_MB="1")
    engine.size = 2 * MB
    engine.pull("127.0.0.1:5000/big:1", timeout=1, stall_timeout=1)
    with pytest.raises(Failure) as caught:
        cache.ensure("127.0.0.1:5000/big:1", "always")
    assert caught.value.code is Code.IMAGE_TOO_LARGE
    assert "127.0.0.1:5000/big:1" in engine.present


# -- d. root's registry credentials only for CONDOR_DOCKER_CREDENTIAL_REGISTRIES ------------------
class _Sent(Exception):
    """Raised by the recording _post: the test needs only the request the pull would send."""


def _pull_headers(tmp_path, monkeypatch, reference: str, credentials: bool) -> dict:
    import base64

    import docker

    from condor_docker.engine.client import Engine
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    secret = base64.b64encode(b"root-user:root-secret").decode()
    (config / "config.json").write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": secret}, "evil.example": {"auth": secret},
        "https://index.docker.io/v1/": {"auth": secret}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    engine = Engine("unix:///nonexistent/docker.sock")
    engine._api = docker.APIClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    sent: dict = {}

    def record(url, **kwargs):
        sent.update(kwargs.get("headers") or {})
        raise _Sent()

    monkeypatch.setattr(engine._api, "_post", record)
    with pytest.raises(_Sent):
        engine.pull(reference, timeout=5, stall_timeout=5, credentials=credentials)
    return sent


@pytest.mark.parametrize("reference", ["evil.example/x:1", "127.0.0.1:5000/x:1", "busybox:1"])
def test_the_engine_pull_is_anonymous_unless_asked(tmp_path, monkeypatch, reference):
    assert "X-Registry-Auth" not in _pull_headers(tmp_path, monkeypatch, reference, credentials=False)
    sent = _pull_headers(tmp_path, monkeypatch, reference, credentials=True)
    import base64
    header = sent["X-Registry-Auth"]
    header = header.decode() if isinstance(header, bytes) else header
    auth = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    assert (auth["username"], auth["password"]) == ("root-user", "root-secret")


def test_credentials_go_only_to_the_listed_registries(tmp_path):
    cache, engine = make(tmp_path, CONDOR_DOCKER_CREDENTIAL_REGISTRIES="127.0.0.1:5000 index.docker.io")
    for reference in ("evil.example/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5001/x:1", "docker.io/library/x:1",
                      "127.0.0.1.evil.example:5000/x:1"):
        cache.ensure(reference, "missing")
    assert [kw["credentials"] for kw in engine.pull_kwargs] == [False, True, False, True, False]
    default, engine = make(tmp_path / "default")
    default.ensure("127.0.0.1:5000/x:1", "missing")
    assert engine.pull_kwargs == [{"credentials": False}] and default.settings.credential_registries == ()


def test_an_anonymous_pull_refused_by_the_registry_is_a_hold_naming_the_knob(tmp_path):
    from condor_docker.engine.client import classify_engine_text
    text = 'Head "http://reg.example/v2/x/manifests/1": no basic auth credentials'
    assert classify_engine_text(text, None, "pull") is Code.IMAGE_ACCESS_DENIED
    cache, engine = make(tmp_path)

    def refuse(reference, **kwargs):
        raise Failure(Code.IMAGE_ACCESS_DENIED, f"Cannot pull image {reference}: {text}")

    engine.pull = refuse
    with pytest.raises(Failure) as caught:
        cache.ensure("reg.example/x:1", "missing")
    assert caught.value.is_hold and "no basic auth credentials" in caught.value.reason
    assert "registry reg.example is not in CONDOR_DOCKER_CREDENTIAL_REGISTRIES" in caught.value.reason
