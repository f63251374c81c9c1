"""Every event is checked by reading it back with HTCondor's own reader.

``htcondor2.JobEventLog`` wraps the C++ ReadUserLog, so these tests pass only
if HTCondor tools (condor_wait, DAGMan, the Python bindings) accept the log.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from pathlib import Path

import htcondor2
import pytest

from condor_docker.local.eventlog import EventLog, JobId

ET = htcondor2.JobEventType
JOB = JobId(42, 7)
OTHER = JobId(43, 0)


def read_events(path: Path) -> list:
    """All events in the file, without waiting for more."""
    return list(htcondor2.JobEventLog(str(path)).events(stop_after=0))


def only_event(path: Path):
    events = read_events(path)
    assert len(events) == 1, events
    return events[0]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "job.log"


@pytest.fixture
def tz_new_york():
    """Run in a zone with DST so local-time round trips are really exercised."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_init_creates_the_file_and_later_logs_append(log_path: Path) -> None:
    EventLog(log_path)
    assert log_path.exists() and log_path.stat().st_size == 0
    EventLog(log_path).submit(JOB)
    EventLog(log_path).submit(OTHER)
    assert [(e.cluster, e.proc) for e in read_events(log_path)] == [(42, 7), (43, 0)]


def test_submit(log_path: Path) -> None:
    EventLog(log_path, host="<10.1.2.3:9618>").submit(JOB)
    event = only_event(log_path)
    assert event.type == ET.SUBMIT
    assert (event.cluster, event.proc) == (42, 7)
    assert event["SubmitHost"] == "<10.1.2.3:9618>"


def test_submit_host_override_and_large_ids(log_path: Path) -> None:
    EventLog(log_path).submit(JobId(123456, 1234), submit_host="<192.168.0.9:1234>")
    event = only_event(log_path)
    assert (event.cluster, event.proc) == (123456, 1234)
    assert event["SubmitHost"] == "<192.168.0.9:1234>"


def test_execute_with_slot(log_path: Path) -> None:
    EventLog(log_path).execute(JOB, exec_host="<10.0.0.5:9618>", slot_name="slot1_1@node")
    event = only_event(log_path)
    assert event.type == ET.EXECUTE
    assert event["ExecuteHost"] == "<10.0.0.5:9618>"
    assert event["SlotName"] == "slot1_1@node"


def test_execute_defaults_to_log_host_and_no_slot(log_path: Path) -> None:
    EventLog(log_path).execute(JOB)
    event = only_event(log_path)
    assert event["ExecuteHost"] == "<127.0.0.1:0>"
    assert "SlotName" not in event


def test_terminated_normally(log_path: Path) -> None:
    EventLog(log_path).terminated(JOB, return_value=3, user_cpu_s=3723.4, sys_cpu_s=90061,
                                  bytes_sent=1000, bytes_received=2000)
    event = only_event(log_path)
    assert event.type == ET.JOB_TERMINATED
    assert (event.cluster, event.proc) == (42, 7)
    assert event["TerminatedNormally"] is True
    assert event["ReturnValue"] == 3
    assert "TerminatedBySignal" not in event
    assert event["RunRemoteUsage"] == "Usr 0 01:02:03, Sys 1 01:01:01"
    assert event["TotalRemoteUsage"] == "Usr 0 01:02:03, Sys 1 01:01:01"
    assert event["SentBytes"] == 1000 and event["ReceivedBytes"] == 2000
    assert event["TotalSentBytes"] == 1000 and event["TotalReceivedBytes"] == 2000
    assert "MemoryUsage" not in event and "RequestCpus" not in event


def test_terminated_by_signal(log_path: Path) -> None:
    EventLog(log_path).terminated(JOB, signal=9)
    event = only_event(log_path)
    assert event.type == ET.JOB_TERMINATED
    assert event["TerminatedNormally"] is False
    assert event["TerminatedBySignal"] == 9
    assert "ReturnValue" not in event


def test_terminated_return_value_zero_is_normal(log_path: Path) -> None:
    EventLog(log_path).terminated(JOB, return_value=0)
    event = only_event(log_path)
    assert event["TerminatedNormally"] is True and event["ReturnValue"] == 0


@pytest.mark.parametrize("kwargs", [{}, {"return_value": 0, "signal": 9}])
def test_terminated_needs_exactly_one_outcome(log_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EventLog(log_path).terminated(JOB, **kwargs)
    assert read_events(log_path) == []


def test_terminated_resource_table(log_path: Path) -> None:
    EventLog(log_path).terminated(
        JOB, return_value=0, memory_usage_mb=12, request_memory_mb=128,
        allocated_memory_mb=256, cpus_usage=0.25, request_cpus=1, allocated_cpus=2,
        disk_usage_kb=12345678901, request_disk_kb=1024, allocated_disk_kb=123456789)
    event = only_event(log_path)
    assert event["MemoryUsage"] == 12
    assert event["RequestMemory"] == 128
    assert event["Memory"] == 256
    assert event["CpusUsage"] == pytest.approx(0.25)
    assert event["RequestCpus"] == 1
    assert event["Cpus"] == 2
    assert event["DiskUsage"] == 12345678901
    assert event["RequestDisk"] == 1024
    assert event["Disk"] == 123456789


def test_terminated_resource_table_partial(log_path: Path) -> None:
    EventLog(log_path).terminated(JOB, return_value=1, memory_usage_mb=7)
    event = only_event(log_path)
    assert event["ReturnValue"] == 1
    assert event["MemoryUsage"] == 7
    assert "RequestMemory" not in event and "Memory" not in event
    assert "CpusUsage" not in event and "DiskUsage" not in event


def test_held_exact(log_path: Path) -> None:
    EventLog(log_path).held(JOB, "Error from slot1@host: image not found", code=34, subcode=12)
    event = only_event(log_path)
    assert event.type == ET.JOB_HELD
    assert (event.cluster, event.proc) == (42, 7)
    assert event["HoldReason"] == "Error from slot1@host: image not found"
    assert event["HoldReasonCode"] == 34
    assert event["HoldReasonSubCode"] == 12


def test_held_default_subcode(log_path: Path) -> None:
    EventLog(log_path).held(JOB, "because", code=1)
    event = only_event(log_path)
    assert (event["HoldReasonCode"], event["HoldReasonSubCode"]) == (1, 0)


SPECIAL = 'image "busybox:latest" isn\'t here; naïve café ✓ 日本語 \\ $(x) %s %d'


def test_held_reason_with_special_characters(log_path: Path) -> None:
    EventLog(log_path).held(JOB, SPECIAL, code=13)
    assert only_event(log_path)["HoldReason"] == SPECIAL


def test_held_reason_very_long_line(log_path: Path) -> None:
    reason = "docker says: " + "é" * 50_000 + " end"
    EventLog(log_path).held(JOB, reason, code=13, subcode=2)
    event = only_event(log_path)
    assert event["HoldReason"] == reason
    assert event["HoldReasonSubCode"] == 2


def test_multiline_reason_stays_one_line_and_cannot_end_the_event(log_path: Path) -> None:
    log = EventLog(log_path)
    log.held(JOB, "first\n...\r\nlast\n", code=5)
    log.submit(OTHER)
    events = read_events(log_path)
    assert [e.type for e in events] == [ET.JOB_HELD, ET.SUBMIT]
    assert events[0]["HoldReason"] == "first|...|last"
    assert events[0]["HoldReasonCode"] == 5


def test_aborted(log_path: Path) -> None:
    EventLog(log_path).aborted(JOB, "via condor_rm (by user alice) " + SPECIAL)
    event = only_event(log_path)
    assert event.type == ET.JOB_ABORTED
    assert event["Reason"] == "via condor_rm (by user alice) " + SPECIAL


def test_requeued_is_an_eviction(log_path: Path) -> None:
    EventLog(log_path).requeued(JOB, "docker engine unreachable: " + SPECIAL)
    event = only_event(log_path)
    assert event.type == ET.JOB_EVICTED
    assert event["Reason"] == "docker engine unreachable: " + SPECIAL
    assert event["TerminatedAndRequeued"] is False
    assert event["Checkpointed"] is False
    assert "ReasonCode" not in event


def test_requeued_with_code(log_path: Path) -> None:
    EventLog(log_path).requeued(JOB, "registry timed out", code=301, subcode=4)
    event = only_event(log_path)
    assert event["Reason"] == "registry timed out"
    assert (event["ReasonCode"], event["ReasonSubCode"]) == (301, 4)


def test_released(log_path: Path) -> None:
    EventLog(log_path).released(JOB, "via condor_release")
    event = only_event(log_path)
    assert event.type == ET.JOB_RELEASED
    assert event["Reason"] == "via condor_release"


def test_image_size(log_path: Path) -> None:
    EventLog(log_path).image_size(JOB, 204800, memory_usage_mb=150, rss_kb=153600)
    event = only_event(log_path)
    assert event.type == ET.IMAGE_SIZE
    assert event["Size"] == 204800
    assert event["MemoryUsage"] == 150
    assert event["ResidentSetSize"] == 153600


def test_image_size_without_optional_fields(log_path: Path) -> None:
    EventLog(log_path).image_size(JOB, 999)
    event = only_event(log_path)
    assert event["Size"] == 999
    assert "MemoryUsage" not in event


def test_header_uses_iso_date(log_path: Path) -> None:
    EventLog(log_path, clock=lambda: 1_700_000_000.9).submit(JOB)
    first = log_path.read_text().splitlines()[0]
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_700_000_000))
    assert first == f"000 (042.007.000) {expected} Job submitted from host: <127.0.0.1:0>"


def test_timestamp_is_now(log_path: Path) -> None:
    before = int(time.time())
    EventLog(log_path).submit(JOB)
    after = time.time()
    assert before <= only_event(log_path).timestamp <= after


@pytest.mark.parametrize("when", [1_700_000_000, 1_720_000_000, 1_735_689_599])
def test_timestamp_round_trips_across_dst(log_path: Path, tz_new_york, when: int) -> None:
    EventLog(log_path, clock=lambda: when + 0.5).held(JOB, "x", code=1)
    assert only_event(log_path).timestamp == when


def test_interleaved_sequence_of_two_jobs(log_path: Path) -> None:
    log = EventLog(log_path)
    log.submit(JOB)
    log.submit(OTHER)
    log.execute(JOB)
    log.execute(OTHER)
    log.image_size(JOB, 100, memory_usage_mb=1)
    log.requeued(OTHER, "engine restarted")
    log.terminated(JOB, return_value=0, memory_usage_mb=1, request_memory_mb=64)
    log.execute(OTHER)
    log.held(OTHER, "out of memory", code=34)
    log.aborted(OTHER, "removed")
    got = [(e.type, e.cluster, e.proc) for e in read_events(log_path)]
    assert got == [
        (ET.SUBMIT, 42, 7), (ET.SUBMIT, 43, 0), (ET.EXECUTE, 42, 7), (ET.EXECUTE, 43, 0),
        (ET.IMAGE_SIZE, 42, 7), (ET.JOB_EVICTED, 43, 0), (ET.JOB_TERMINATED, 42, 7),
        (ET.EXECUTE, 43, 0), (ET.JOB_HELD, 43, 0), (ET.JOB_ABORTED, 43, 0),
    ]


EVENTS_PER_WRITER = 300
FILLER = "z" * 6000  # events larger than a page make torn writes likely


def append_many(path: str, cluster: int, start: multiprocessing.synchronize.Event) -> None:
    log = EventLog(path)
    start.wait()
    for i in range(EVENTS_PER_WRITER):
        log.held(JobId(cluster, i), f"{cluster}:{i}:{FILLER}", code=cluster, subcode=i)


def test_concurrent_writers_do_not_interleave(log_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    writers = [ctx.Process(target=append_many, args=(str(log_path), c, start)) for c in (1, 2)]
    for w in writers:
        w.start()
    start.set()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    events = read_events(log_path)
    assert len(events) == 2 * EVENTS_PER_WRITER
    for cluster in (1, 2):
        mine = [e for e in events if e.cluster == cluster]
        assert [e.proc for e in mine] == list(range(EVENTS_PER_WRITER))
        for e in mine:
            assert e["HoldReason"] == f"{cluster}:{e.proc}:{FILLER}"
            assert (e["HoldReasonCode"], e["HoldReasonSubCode"]) == (cluster, e.proc)
    text = log_path.read_text()
    assert len(re.findall(r"^\.\.\.$", text, flags=re.M)) == 2 * EVENTS_PER_WRITER
