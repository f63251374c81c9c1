"""Write HTCondor job event logs ("user logs") in the classic text format.

The local runner has no schedd or shadow, yet users, DAGMan, ``condor_wait``
and ``htcondor2.JobEventLog`` expect the submit file's ``log`` to be a real
HTCondor event log.  This module produces that format directly.  The layout of
each event body follows the writer/reader pair in HTCondor's
``src/condor_utils/condor_event.cpp`` and the framing (one ``write()`` per
event, ``...`` sync line) follows ``src/condor_utils/write_user_log.cpp``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

# ULogEventNumber values (condor_event.h); only the ones we write.
SUBMIT = 0
EXECUTE = 1
JOB_EVICTED = 4
JOB_TERMINATED = 5
IMAGE_SIZE = 6
JOB_ABORTED = 9
JOB_HELD = 12
JOB_RELEASED = 13

SYNC_LINE = "...\n"
DEFAULT_HOST = "<127.0.0.1:0>"


@dataclass(frozen=True)
class JobId:
    """A job's cluster.proc; the subproc in the log header is always 0."""

    cluster: int
    proc: int


def one_line(text: str) -> str:
    """Make free text safe as a single event body line.

    The reader is line oriented: a newline would end the field early and a
    line reading ``...`` would end the event, so inner newlines become ``|``
    and carriage returns spaces (what HTCondor itself does to reasons).  NULs
    would truncate the C string on read.  Surrounding whitespace, such as the
    trailing newline of captured stderr, is dropped: the reader trims it anyway.
    """
    cleaned = text.replace("\0", "").strip()
    return cleaned.replace("\r\n", "|").replace("\n", "|").replace("\r", " ")


def header(event_number: int, job: JobId, when: float) -> str:
    """Event header with the ISO date, HTCondor's default (USERLOG_FORMAT_DEFAULT).

    The old ``MM/DD`` form has no year, so readers have to guess it; the
    ``YYYY-MM-DD HH:MM:SS`` local-time form is unambiguous apart from DST.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(when)))
    return f"{event_number:03d} ({job.cluster:03d}.{job.proc:03d}.000) {stamp} "


def rusage_field(seconds: float) -> str:
    """CPU time as ``D HH:MM:SS``, the only precision the format carries."""
    total = max(0, int(round(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} {hours:02d}:{minutes:02d}:{secs:02d}"


def rusage_line(user_s: float, sys_s: float, label: str) -> str:
    """One usage line; the reader scans ``Usr d h:m:s, Sys d h:m:s``."""
    return f"\t\tUsr {rusage_field(user_s)}, Sys {rusage_field(sys_s)}  -  {label}\n"


def resource_value(value: float | int | None) -> str:
    """Numbers as HTCondor prints them: integers bare, fractions with 2 places."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}"
    return str(int(value))


def resource_table(rows: list[tuple[str, list[float | int | None]]]) -> str:
    """The "Partitionable Resources" table of a termination event.

    The reader slices each row at the column edges it finds in the header
    line, relative to the ``:``, so the header and rows must share widths and
    the colon column.  A resource appears only if at least one value is known;
    a blank cell simply leaves that attribute out on read.
    """
    cells = [(label, [resource_value(v) for v in values]) for label, values in rows
             if any(v is not None for v in values)]
    if not cells:
        return ""
    titles = ("Usage", "Request", "Allocated")
    widths = [max([len(t), 8 if i < 2 else 9] + [len(c[1][i]) for c in cells])
              for i, t in enumerate(titles)]
    cols = " ".join(f"{t:>{w}}" for t, w in zip(titles, widths))
    lines = [f"\tPartitionable Resources : {cols}\n"]
    for label, values in cells:
        cols = " ".join(f"{v:>{w}}" for v, w in zip(values, widths))
        lines.append(f"\t   {label:<20} : {cols}\n")
    return "".join(lines)


def append_all(path: str, data: bytes) -> None:
    """Append ``data`` with a single write() on an O_APPEND descriptor.

    O_APPEND makes the kernel seek and write atomically on local
    filesystems, so whole events from several processes never interleave
    (the same technique as WriteUserLog::doWriteEvent).  The descriptor is
    unbuffered, so there is nothing left to flush once write() returns.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # only on ENOSPC-like trouble; keep the bytes
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


class EventLog:
    """Appends HTCondor job events for one log file.

    The file is opened per event rather than held open so that several
    runner processes, log rotation or deletion never leave a stale descriptor,
    and so there is nothing to close.
    """

    def __init__(self, path: str | os.PathLike[str], host: str = DEFAULT_HOST,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.path = os.fspath(path)
        self.host = host
        self._clock = clock  # injectable so tests can pin the timestamp
        append_all(self.path, b"")  # create the log now, as condor_submit does

    def _write(self, event_number: int, job: JobId, body: str) -> None:
        """Frame one event (header, body, sync line) and append it in one write."""
        text = header(event_number, job, self._clock()) + body + SYNC_LINE
        append_all(self.path, text.encode("utf-8", errors="replace"))

    def submit(self, job: JobId, submit_host: str | None = None) -> None:
        """000: the job entered the queue."""
        host = one_line(submit_host or self.host)
        self._write(SUBMIT, job, f"Job submitted from host: {host}\n")

    def execute(self, job: JobId, exec_host: str | None = None,
                slot_name: str | None = None) -> None:
        """001: the job started running; SlotName is optional in the format."""
        body = f"Job executing on host: {one_line(exec_host or self.host)}\n"
        if slot_name:
            body += f"\tSlotName: {one_line(slot_name)}\n"
        self._write(EXECUTE, job, body)

    def terminated(self, job: JobId, *, return_value: int | None = None,
                   signal: int | None = None, user_cpu_s: float = 0.0,
                   sys_cpu_s: float = 0.0, bytes_sent: int = 0,
                   bytes_received: int = 0, memory_usage_mb: int | None = None,
                   request_memory_mb: int | None = None,
                   allocated_memory_mb: int | None = None,
                   cpus_usage: float | None = None, request_cpus: int | None = None,
                   allocated_cpus: int | None = None,
                   disk_usage_kb: int | None = None, request_disk_kb: int | None = None,
                   allocated_disk_kb: int | None = None) -> None:
        """005: the job left the queue by exiting or by a signal.

        There was a single run, so the run and total figures are the same and
        all usage is "remote" (the job's), none "local" (the shadow's).
        """
        if (return_value is None) == (signal is None):
            raise ValueError("give exactly one of return_value or signal")
        if signal is None:
            body = f"Job terminated.\n\t(1) Normal termination (return value {return_value})\n"
        else:
            body = (f"Job terminated.\n\t(0) Abnormal termination (signal {signal})\n"
                    "\t(0) No core file\n")
        body += (rusage_line(user_cpu_s, sys_cpu_s, "Run Remote Usage")
                 + rusage_line(0, 0, "Run Local Usage")
                 + rusage_line(user_cpu_s, sys_cpu_s, "Total Remote Usage")
                 + rusage_line(0, 0, "Total Local Usage"))
        for scope, sent, received in (("Run", bytes_sent, bytes_received),
                                      ("Total", bytes_sent, bytes_received)):
            body += f"\t{int(sent)}  -  {scope} Bytes Sent By Job\n"
            body += f"\t{int(received)}  -  {scope} Bytes Received By Job\n"
        body += resource_table([
            ("Cpus", [cpus_usage, request_cpus, allocated_cpus]),
            ("Disk (KB)", [disk_usage_kb, request_disk_kb, allocated_disk_kb]),
            ("Memory (MB)", [memory_usage_mb, request_memory_mb, allocated_memory_mb]),
        ])
        self._write(JOB_TERMINATED, job, body)

    def held(self, job: JobId, reason: str, code: int, subcode: int = 0) -> None:
        """012: the job was put on hold; read back as HoldReason/Code/SubCode."""
        text = one_line(reason) or "Reason unspecified"
        self._write(JOB_HELD, job,
                    f"Job was held.\n\t{text}\n\tCode {int(code)} Subcode {int(subcode)}\n")

    def released(self, job: JobId, reason: str = "") -> None:
        """013: a held job went back to idle."""
        text = one_line(reason)
        self._write(JOB_RELEASED, job, "Job was released.\n" + (f"\t{text}\n" if text else ""))

    def aborted(self, job: JobId, reason: str) -> None:
        """009: the job was removed; the reason is read back as Reason."""
        text = one_line(reason)
        self._write(JOB_ABORTED, job, "Job was aborted.\n" + (f"\t{text}\n" if text else ""))

    def requeued(self, job: JobId, reason: str, *, code: int = 0, subcode: int = 0) -> None:
        """004 "Job was evicted.": the run ended early and the job is idle again.

        This is the event HTCondor writes whenever a running job is vacated
        back to the queue (preemption, condor_vacate, a shutdown); DAGMan and
        htcondor_cli map it to idle.  A shadow exception (007) would claim a
        condor_shadow crashed, which cannot happen without daemons.  A nonzero
        code is read back as ReasonCode/ReasonSubCode; older readers match the
        first line by prefix and simply ignore it.
        """
        text = one_line(reason)
        codes = f" Code {int(code)} Subcode {int(subcode)}" if code else ""
        body = (f"Job was evicted.{codes}\n\t(0) CPU times\n"
                + rusage_line(0, 0, "Run Remote Usage")
                + rusage_line(0, 0, "Run Local Usage")
                + "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
                + (f"\tReason: {text}\n" if text else ""))
        self._write(JOB_EVICTED, job, body)

    def image_size(self, job: JobId, image_size_kb: int,
                   memory_usage_mb: int | None = None, rss_kb: int | None = None) -> None:
        """006: periodic memory report; the optional lines are omitted when unknown."""
        body = f"Image size of job updated: {int(image_size_kb)}\n"
        if memory_usage_mb is not None:
            body += f"\t{int(memory_usage_mb)}  -  MemoryUsage of job (MB)\n"
        if rss_kb is not None:
            body += f"\t{int(rss_kb)}  -  ResidentSetSize of job (KB)\n"
        self._write(IMAGE_SIZE, job, body)

    def terminated_and_requeued(self, job: JobId, *, return_value: int | None = None,
                                signal: int | None = None, reason: str = "") -> None:
        """004 in its "terminated and requeued" form: the job exited but its OnExitRemove was false.

        The shadow writes this (not 005) when the job's policy sends an exited job
        back to the queue (max_retries, on_exit_remove); readers see it as an
        eviction with TerminatedAndRequeued, the exit status and the reason.
        """
        if (return_value is None) == (signal is None):
            raise ValueError("give exactly one of return_value or signal")
        if signal is None:
            status = f"\t(1) Normal termination (return value {int(return_value)})\n"
        else:
            status = f"\t(0) Abnormal termination (signal {int(signal)})\n\t(0) No core file\n"
        text = one_line(reason)
        body = ("Job was evicted.\n\t(0) Job terminated and was requeued\n"
                + rusage_line(0, 0, "Run Remote Usage")
                + rusage_line(0, 0, "Run Local Usage")
                + "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
                + status + (f"\t{text}\n" if text else ""))
        self._write(JOB_EVICTED, job, body)
