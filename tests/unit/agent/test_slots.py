"""Trusted slot sizes (a fake startd), the starter proof's slot, and ads that classad2 would cut short."""
from __future__ import annotations

import os

import pytest
from testpaths import FIXTURES

from condor_docker.agent import slots, starter_proof
from condor_docker.core import ads
from condor_docker.core.failures import Code, Failure
from condor_docker.core.settings import default_settings


def machine_ad_as_dict() -> dict:
    ad = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    return {key: ad.eval(key) for key in ("Name", "Cpus", "Memory", "Disk", "GPUs")}


def test_the_startds_slot_ad_is_the_trusted_size():
    asked = []

    def startd(slot):
        asked.append(slot)
        return machine_ad_as_dict()

    source = slots.SlotSource(default_settings(), 16, 64000, query=startd)
    found = source.resources("slot1_1")
    assert (found.cpus, found.memory_mb, found.disk_kb, found.gpus) == (1, 128, 2048, 0)
    assert "slot1_1@vm" in found.source and asked == ["slot1_1"]


def test_the_admin_caps_also_bound_the_startd():
    source = slots.SlotSource(default_settings(CONDOR_DOCKER_MAX_MEMORY_MB="64"), 16, 64000,
                                    query=lambda slot: machine_ad_as_dict())
    assert source.resources("slot1_1").memory_mb == 64


def test_no_startd_never_gives_the_caps_and_is_not_asked_again_at_once():
    """Fail closed: a silent startd means "try again", not "take the whole machine" (trust round 2, 7)."""
    calls = []

    def no_startd(slot):
        calls.append(slot)
        raise slots.NoStartd("nobody home")

    source = slots.SlotSource(default_settings(CONDOR_DOCKER_MAX_CPUS="2"), 16, 64000, query=no_startd,
                              second_opinion=no_startd)
    for slot in ("slot1_1", "slot1_2"):
        with pytest.raises(Failure, match=f"no startd answered for slot {slot}") as err:
            source.resources(slot)
        assert err.value.code is Code.SLOT_UNKNOWN and not err.value.is_hold
    assert calls == ["slot1_1", "slot1_1"]          # the first query and the fresh process, then quiet


def _answers_once(ad: dict) -> slots.SlotSource:
    """A source whose startd answers `ad` once, then is silent (restarting)."""
    answers = [ad]

    def flaky(slot):
        if answers:
            return answers.pop()
        raise slots.NoStartd("restarting")

    return slots.SlotSource(default_settings(), 16, 64000, query=flaky, second_opinion=flaky)


def test_a_silent_startd_gives_the_last_size_it_said():
    source = _answers_once({"Name": "slot1_1@x", "Cpus": 1, "Memory": 128, "Disk": 4096, "GPUs": 0})
    first = source.resources("slot1_1")
    source._no_startd_until = 0.0
    again = source.resources("slot1_1")
    assert (again.cpus, again.memory_mb, again.disk_kb) == (1, 128, 4096) == (first.cpus, first.memory_mb,
                                                                                first.disk_kb)
    assert "as it last answered" in again.source


def test_gpus_come_from_the_startds_assignment_only():
    ad = {"Name": "slot1_1@x", "Cpus": 1, "Memory": 128, "GPUs": 1, "AssignedGPUs": "CUDA1"}
    trusted = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: ad).resources("slot1_1")
    assert trusted.assigned_gpus == ("CUDA1",) and trusted.gpus == 1


def test_a_slot_the_startd_does_not_have_is_a_hold():
    source = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: None)
    with pytest.raises(Failure, match="no slot slot9_9") as err:
        source.resources("slot9_9")
    assert err.value.code is Code.POLICY_REFUSED


@pytest.mark.parametrize("slot", ['slot1_1") || true || ("', "", "../x", None, "a" * 100])
def test_a_slot_name_cannot_inject_a_constraint(slot):
    source = slots.SlotSource(default_settings(), 16, 64000, query=lambda s: pytest.fail("asked"))
    with pytest.raises(Failure, match="not a slot name"):
        source.resources(slot)


def test_caps_source_never_asks_a_startd():
    source = slots.SlotSource(default_settings(CONDOR_DOCKER_SLOT_SOURCE="caps"), 4, 1000)
    assert source.query is None and source.resources("slot1_1").memory_mb == 1000


def test_the_starters_command_line_names_the_slot():
    argv = ["condor_starter", "-f", "-local-name", "slot_type_1", "-a", "slot1_1", "127.0.0.1"]  # seen, 25.0.13
    assert starter_proof.slot_from_cmdline(argv) == "slot1_1"
    assert starter_proof.slot_from_cmdline(["condor_starter", "-f"]) is None
    assert starter_proof.slot_from_cmdline(["condor_starter", "-a", "../../x"]) is None


def test_no_starter_among_the_ancestors_is_no_proof():
    assert starter_proof.find_starter(os.getpid(), f"dir_{os.getppid()}", {0}) is None


@pytest.mark.parametrize("text,named", [
    ('ClusterId = 1\nDockerImage = "busybox\nWantDocker = true\n', "DockerImage on line 2"),
    ('ClusterId = 1\nWantDocker = true\nEnvironment = "A=1', "Environment on line 3"),
    ('A = "x\nA = 1\n', "A on line 1"),
    ("ClusterId = 1\nthis is not an attribute\n", "line 2"),
])
def test_an_ad_cut_short_is_a_hold_naming_the_line(text, named):
    with pytest.raises(Failure, match=named) as err:
        ads.parse_ad(text, "job ad")
    assert err.value.code is Code.BAD_JOB_AD


def test_real_ads_parse_whole():
    for name in ("job.ad", "machine.ad", "prepare-hook-stdin.ad", "job-exit-hook-stdin.ad"):
        with open(os.path.join(FIXTURES, name)) as stream:
            text = stream.read()
        assert len(ads.parse_ad(text, name)) == sum(1 for line in text.splitlines() if "=" in line)


def test_no_such_slot_is_asked_again_from_a_fresh_process_before_it_holds():
    """A stale session (restarted startd) makes the first answer 'no slot'; the second opinion decides."""
    asked = []

    def fresh(slot):
        asked.append(slot)
        return machine_ad_as_dict()

    source = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: None, second_opinion=fresh)
    assert source.resources("slot1_1").memory_mb == 128 and asked == ["slot1_1"]


def test_a_first_query_error_is_asked_again_too():
    def broken(slot):
        raise RuntimeError("attempt to open invalid session")

    source = slots.SlotSource(default_settings(), 16, 64000, query=broken,
                                    second_opinion=lambda slot: machine_ad_as_dict())
    assert "slot1_1@vm" in source.resources("slot1_1").source


def test_both_saying_no_such_slot_is_a_hold_and_a_found_slot_needs_no_second_opinion():
    source = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: None,
                                    second_opinion=lambda slot: None)
    with pytest.raises(Failure, match="no slot slot9_9"):
        source.resources("slot9_9")
    found = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: machine_ad_as_dict(),
                                   second_opinion=lambda slot: pytest.fail("asked twice"))
    assert found.resources("slot1_1").cpus == 1


def test_no_answer_from_the_fresh_process_leaves_no_such_slot_a_hold():
    """A job naming a slot the startd lacks cannot reach the (larger) caps by making the second query fail."""
    def silent(slot):
        raise slots.NoStartd("fresh slot query: timed out")

    source = slots.SlotSource(default_settings(), 16, 64000, query=lambda slot: None, second_opinion=silent)
    with pytest.raises(Failure, match="no slot slot1_7"):
        source.resources("slot1_7")


def test_the_startd_source_gets_the_fresh_process_second_opinion_by_default():
    source = slots.SlotSource(default_settings(), 16, 64000)
    assert source.query is slots.startd_query
    assert source.second_opinion is slots.fresh_process_query


def test_the_fresh_process_reports_no_startd_as_such(monkeypatch, tmp_path):
    """Where no HTCondor config answers, the subprocess exits 3 and that is NoStartd (never a hold)."""
    config = tmp_path / "condor_config"
    config.write_text(f"LOG = {tmp_path}\nSTARTD_ADDRESS_FILE = {tmp_path}/none\nCOLLECTOR_HOST = 127.0.0.1:1\n")
    monkeypatch.setenv("CONDOR_CONFIG", str(config))
    with pytest.raises(slots.NoStartd):
        slots.fresh_process_query("slot1_1")


def test_the_fresh_process_refuses_a_bad_slot_name():
    assert slots.main(['slot1_1") || true || ("']) == 2


def test_without_a_startd_the_disk_limit_is_the_admins_never_the_jobs(tmp_path):
    """An independent review: in caps mode a job that deleted `Disk` from .machine.ad had no limit."""
    from condor_docker.agent import policy
    capped = slots.SlotSource(default_settings(CONDOR_DOCKER_SLOT_SOURCE="caps", CONDOR_DOCKER_MAX_DISK_MB="100"),
                              4, 1000).caps()
    assert capped.disk_kb == 100 * 1024
    by_fs = slots.SlotSource(default_settings(CONDOR_DOCKER_SLOT_SOURCE="caps",
                                              CONDOR_DOCKER_EXECUTE_DIRS=str(tmp_path)), 4, 1000).caps()
    assert by_fs.disk_kb and by_fs.disk_kb > 0
    assert policy._disk_limit_kb(None, capped.disk_kb) == 100 * 1024       # Disk deleted: the cap
    assert policy._disk_limit_kb(4096, capped.disk_kb) == 4096              # the job may only lower it


def test_the_last_size_goes_back_only_to_the_same_job():
    """Dynamic slot names are reused: the next claim of slot1_1 (another starter) may be smaller,
    so a silent startd must not hand it the previous job's 8 GB."""
    source = _answers_once({"Name": "slot1_1@x", "Cpus": 4, "Memory": 8192, "Disk": 4096, "GPUs": 0})
    assert source.resources("slot1_1", claim="4242").memory_mb == 8192
    source._no_startd_until = 0.0
    assert source.resources("slot1_1", claim="4242").memory_mb == 8192        # the same starter
    source._no_startd_until = 0.0
    with pytest.raises(Failure) as caught:
        source.resources("slot1_1", claim="5353")                            # the next claim's starter
    assert caught.value.code is Code.SLOT_UNKNOWN
