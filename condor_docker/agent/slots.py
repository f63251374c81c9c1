"""Where a job's resource limits come from: a source the job cannot write.

`.machine.ad` sits in the job's own scratch dir, so a job can rewrite it
(`Memory = 1000000000`) before its launcher runs.  Its values are only a claim.
The agent checks the claim against, in order:

1. the startd's own slot ad: the agent (root, trusted) asks the local startd
   directly (its address file, as `condor_status -direct` does; then the pool's
   collector, constrained to this machine) for the slot the job runs in, and
   reads Cpus, Memory (MB), Disk (KB) and GPUs from it;
2. when no startd answers (a machine without HTCondor daemons, the tests), the
   admin's caps CONDOR_DOCKER_MAX_CPUS / CONDOR_DOCKER_MAX_MEMORY_MB, or the
   machine's own size (psutil) where a cap is 0.

A claim above the trusted value is refused (a HOLD naming both numbers), never
silently used.  The query is a callable, so tests inject a fake startd.  The
machine's own size (`machine_resources`, psutil) also bounds the memory of all
running containers together (`check_memory_budget`, a REQUEUE).

A "no such slot" answer (or no answer) is asked again once, from a fresh process,
before it counts: the agent lives longer than a startd, and after `condor_restart
-startd` its cached security session is refused by the new startd
("attempt to open invalid session" in the StartLog), while the collector does not
yet have the new dynamic slot.  Without the second opinion the first job after
every startd restart was held.  A fresh process has no cached sessions, and the
startd's own answer there is the truth.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..core.failures import Code, Failure
from ..core.settings import Settings

log = logging.getLogger("condor_docker.slot_source")

SLOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
QUERY_TIMEOUT = 5.0
NO_STARTD_RETRY = 30.0   # seconds before asking again after no startd answered


@dataclass(frozen=True)
class SlotResources:
    """A slot's size as a trusted source says it (None: that source does not say)."""
    cpus: int
    memory_mb: int
    disk_kb: int | None
    gpus: int | None
    source: str          # for messages: "the startd's slot1_1@host", "the admin's caps"
    assigned_gpus: tuple[str, ...] | None = None   # the startd's AssignedGPUs (None: this source does not say)
    vouched: tuple[tuple[str, str], ...] = ()      # RemoteOwner, RemoteUser, Name as the startd says


class NoStartd(Exception):
    """No startd answered on this machine (the caller falls back to the admin's caps)."""


SlotQuery = Callable[[str], "dict | None"]   # slot name -> its ad as a dict, None if no such slot


def startd_query(slot: str) -> dict | None:
    """The local startd's ad of `slot` (htcondor2); raises NoStartd when none answers."""
    import htcondor2

    constraint = f'regexp("^{slot}@", Name)'
    projection = ["Name", "Cpus", "Memory", "Disk", "GPUs", "AssignedGPUs", "RemoteOwner", "RemoteUser"]
    address_file = htcondor2.param.get("STARTD_ADDRESS_FILE")
    errors = []
    if address_file:
        try:
            with open(address_file) as stream:
                address = stream.readline().strip()
            ads = htcondor2.Collector(address).query(htcondor2.AdTypes.Startd, constraint=constraint,
                                                     projection=projection)
            return dict(ads[0]) if ads else None
        except Exception as err:  # no file, no daemon, no permission: try the collector
            errors.append(f"startd at {address_file}: {err}")
    try:
        host = htcondor2.param.get("FULL_HOSTNAME") or ""
        ads = htcondor2.Collector().query(htcondor2.AdTypes.Startd,
                                          constraint=f'{constraint} && Machine == "{host}"',
                                          projection=projection)
        return dict(ads[0]) if ads else None
    except Exception as err:
        errors.append(f"collector: {err}")
    raise NoStartd("; ".join(errors))


def fresh_process_query(slot: str) -> dict | None:
    """`startd_query(slot)` run in a new interpreter: no security session of ours is reused.

    Raises NoStartd when that process finds no startd, cannot run, or takes too long.
    """
    try:
        # -I: no PYTHONPATH, no user site, no cwd on sys.path; cwd /: nothing of the agent's cwd
        result = subprocess.run([sys.executable, "-I", "-m", "condor_docker.agent.slots", slot], cwd="/", capture_output=True,
                                text=True, timeout=QUERY_TIMEOUT * 2, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NoStartd(f"fresh slot query: {err}") from None
    if result.returncode != 0:
        raise NoStartd(f"fresh slot query: {result.stderr.strip()[-300:] or result.returncode}")
    try:
        ad = json.loads(result.stdout)
    except ValueError:
        raise NoStartd(f"fresh slot query printed {result.stdout[:100]!r}") from None
    return ad if isinstance(ad, dict) else None


MAX_KNOWN_SLOTS = 4096
SLOT_VOUCHED = ("RemoteOwner", "RemoteUser", "Name")   # the slot ad's part of settings.MOUNT_IF_ATTRIBUTES


def _gpu_ids(value) -> tuple[str, ...] | None:
    """The startd's AssignedGPUs ("CUDA0,CUDA1" or "GPU-…") as ids; None when it is not a string."""
    if not isinstance(value, str):
        return None
    return tuple(item for item in re.split(r"[\s,]+", value.strip()) if item)[:64]


def _number(ad: dict, attr: str) -> int | None:
    value = ad.get(attr)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


class SlotSource:
    """Trusted slot sizes: the startd when it answers, else the admin's caps / the machine."""

    def __init__(self, settings: Settings, machine_cpus: int, machine_memory_mb: int,
                 query: SlotQuery | None = None, second_opinion: SlotQuery | None = None) -> None:
        self.settings = settings
        self.machine_cpus = machine_cpus
        self.machine_memory_mb = machine_memory_mb
        use_startd = query is None and settings.slot_source == "startd"
        self.query = query if query is not None else (startd_query if use_startd else None)
        self.second_opinion = second_opinion if second_opinion is not None else (
            fresh_process_query if use_startd else None)
        self._no_startd_until = 0.0
        # (slot, the job's proven starter pid) -> what its startd said last: a dynamic slot's name is
        # reused by the next claim, whose size may be smaller; only the same job gets its own size back
        self._last_known: dict[tuple[str, str | None], SlotResources] = {}
        self._lock = threading.Lock()
        self._second_lock = threading.Lock()

    def caps(self) -> SlotResources:
        return SlotResources(self.settings.max_cpus or self.machine_cpus,
                             self.settings.max_memory_mb or self.machine_memory_mb, self._disk_cap_kb(), None,
                             "the admin's caps (CONDOR_DOCKER_MAX_CPUS/_MEMORY_MB/_DISK_MB, "
                             "else this machine's size)")

    def _disk_cap_kb(self) -> int | None:
        """The disk limit without a startd: the admin's cap, else the execute filesystem's size (never the job's)."""
        if self.settings.max_disk_mb:
            return self.settings.max_disk_mb * 1024
        for directory in self.settings.execute_dirs:
            try:
                info = os.statvfs(directory)
            except OSError:
                continue
            return info.f_blocks * info.f_frsize // 1024
        return None

    def resources(self, slot: str, claim: str | None = None) -> SlotResources:
        """The trusted size of `slot`: HOLD when the startd has no such slot; never the caps by accident.

        With a startd configured (CONDOR_DOCKER_SLOT_SOURCE = startd), a moment
        when no startd answers (busy, restarting) must not hand the job the whole
        machine: the last size that startd gave for this slot is used, else the
        job goes back to idle (SLOT_UNKNOWN) and is tried again.  `claim` (the job's proven
        starter pid) keys that memory: another job on a slot of the same name never gets it.
        """
        if not isinstance(slot, str) or not SLOT_NAME.match(slot):
            raise Failure(Code.POLICY_REFUSED, f"slot name {str(slot)[:80]!r} is not a slot name like slot1_1")
        if self.query is None:
            return self.caps()
        ad = self._ask(slot)
        if ad is None:
            return self._last_known_or_retry(slot, claim)
        if ad is _NO_SUCH_SLOT:
            raise Failure(Code.POLICY_REFUSED, f"the startd of this machine has no slot {slot}: "
                                               "the job's _CONDOR_SLOT or .machine.ad was changed")
        cpus, memory = _number(ad, "Cpus"), _number(ad, "Memory")
        if not cpus or not memory:
            log.warning("slot %s ad has no Cpus/Memory (%s): trying the job again later", slot, ad)
            return self._last_known_or_retry(slot, claim)
        caps = self.caps()
        found = SlotResources(min(cpus, caps.cpus), min(memory, caps.memory_mb), _number(ad, "Disk"),
                              _number(ad, "GPUs"), f"the startd's slot {ad.get('Name') or slot}",
                              _gpu_ids(ad.get("AssignedGPUs")),
                              tuple((name, ad[name][:256]) for name in SLOT_VOUCHED if isinstance(ad.get(name), str)))
        with self._lock:
            self._last_known[(slot, claim)] = found
            while len(self._last_known) > MAX_KNOWN_SLOTS:
                self._last_known.pop(next(iter(self._last_known)))
        return found

    def _last_known_or_retry(self, slot: str, claim: str | None) -> SlotResources:
        with self._lock:
            known = self._last_known.get((slot, claim))
        if known is not None:
            return dataclasses.replace(known, source=known.source + " (as it last answered)")
        raise Failure(Code.SLOT_UNKNOWN, f"no startd answered for slot {slot} and its size is not known yet; "
                                         "the job will be tried again")

    def _ask(self, slot: str):
        """The slot's ad, _NO_SUCH_SLOT, or None (no startd answered)."""
        if self.query is None:
            return None
        with self._lock:
            if time.monotonic() < self._no_startd_until:
                return None
        answer, why = _ask_with_timeout(self.query, slot, QUERY_TIMEOUT)
        if (answer is _NO_ANSWER or answer is None) and self.second_opinion is not None:
            with self._second_lock:   # one fresh interpreter at a time, whatever the number of callers
                with self._lock:
                    if time.monotonic() < self._no_startd_until:
                        return None
                second, second_why = _ask_with_timeout(self.second_opinion, slot, QUERY_TIMEOUT * 2 + 1)
            log.info("slot %s: first query said %s; a fresh process says %s", slot,
                     _describe(answer, why), _describe(second, second_why))
            if second is not _NO_ANSWER:      # else the first answer stands ("no such slot" stays a hold)
                answer, why = second, second_why
        if answer is not _NO_ANSWER:
            return answer if answer is not None else _NO_SUCH_SLOT
        with self._lock:
            self._no_startd_until = time.monotonic() + NO_STARTD_RETRY
        log.info("no startd answered for slot %s (%s): its last known size, else try the job again; "
                 "not asking again for %.0f s", slot, why, NO_STARTD_RETRY)
        return None


_NO_ANSWER = object()


def _describe(answer, why: str) -> str:
    """An answer of `_ask_with_timeout` in a log line's words."""
    if answer is _NO_ANSWER:
        return why
    return "no such slot" if answer is None else "it exists"


def _ask_with_timeout(query: SlotQuery, slot: str, timeout: float) -> tuple:
    """(the query's answer, "") or (_NO_ANSWER, why): a hung binding never blocks a request longer."""
    found: list = []
    failed: list = []

    def ask() -> None:
        try:
            found.append(query(slot))
        except NoStartd as err:
            failed.append(str(err))
        except Exception as err:  # any binding error counts as no answer
            failed.append(f"{type(err).__name__}: {err}")

    worker = threading.Thread(target=ask, daemon=True, name="slot-query")
    worker.start()
    worker.join(timeout)
    if found:
        return found[0], ""
    return _NO_ANSWER, failed[0] if failed else f"no answer in {timeout:.0f} s"


_NO_SUCH_SLOT = object()


@dataclass(frozen=True)
class MachineResources:
    """What this machine has, as the kernel reports it (not as an ad claims)."""
    cpus: int
    memory_mb: int


def machine_resources() -> MachineResources:
    import psutil  # only the agent needs it

    return MachineResources(cpus=psutil.cpu_count() or 1,
                            memory_mb=psutil.virtual_memory().total // (1024 * 1024))


def check_memory_budget(memory_mb: int, running_mb: int, machine: MachineResources, job_id: str) -> None:
    """REQUEUE when this container plus the running ones would not fit in the machine's memory."""
    if running_mb + memory_mb > machine.memory_mb:
        raise Failure(Code.ENGINE_ERROR,
                      f"job {job_id} asks for {memory_mb} MB but containers already running hold "
                      f"{running_mb} MB of this machine's {machine.memory_mb} MB: try again later")


def check_claim(what: str, claimed: int | None, trusted: int | None, unit: str, resources: SlotResources) -> None:
    """HOLD when the job's ad claims more than the trusted source gives."""
    if claimed is None or trusted is None or claimed <= trusted:
        return
    raise Failure(Code.POLICY_REFUSED,
                  f"the job claims {what} = {claimed}{unit} but {resources.source} gives {trusted}{unit}: "
                  f".machine.ad in the scratch dir was changed, or request_{what.lower()} is above what "
                  "this machine offers; resubmit with a smaller request")


def main(argv: list[str]) -> int:
    """`python -m condor_docker.agent.slots SLOT`: the slot's ad as JSON (null: no such slot).

    Exit 3 when no startd answers.  Used by the agent for a second opinion from a
    process without cached security sessions.
    """
    if len(argv) != 1 or not SLOT_NAME.match(argv[0]):
        print("usage: python -m condor_docker.agent.slots SLOT (a slot name like slot1_1)", file=sys.stderr)
        return 2
    try:
        ad = startd_query(argv[0])
    except NoStartd as err:
        print(str(err), file=sys.stderr)
        return 3
    print(json.dumps(None if ad is None else
                     {key: value for key, value in ad.items() if isinstance(value, (int, float, str, bool))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
