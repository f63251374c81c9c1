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
silently used.  The query is a callable, so tests inject a fake startd.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .failures import Code, Failure
from .settings import Settings

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


class NoStartd(Exception):
    """No startd answered on this machine (the caller falls back to the admin's caps)."""


SlotQuery = Callable[[str], "dict | None"]   # slot name -> its ad as a dict, None if no such slot


def startd_query(slot: str) -> dict | None:
    """The local startd's ad of `slot` (htcondor2); raises NoStartd when none answers."""
    import htcondor2

    constraint = f'regexp("^{slot}@", Name)'
    projection = ["Name", "Cpus", "Memory", "Disk", "GPUs"]
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


def _number(ad: dict, attr: str) -> int | None:
    value = ad.get(attr)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


class SlotSource:
    """Trusted slot sizes: the startd when it answers, else the admin's caps / the machine."""

    def __init__(self, settings: Settings, machine_cpus: int, machine_memory_mb: int,
                 query: SlotQuery | None = None) -> None:
        self.settings = settings
        self.machine_cpus = machine_cpus
        self.machine_memory_mb = machine_memory_mb
        self.query = query if query is not None else (startd_query if settings.slot_source == "startd" else None)
        self._no_startd_until = 0.0
        self._lock = threading.Lock()

    def caps(self) -> SlotResources:
        return SlotResources(self.settings.max_cpus or self.machine_cpus,
                             self.settings.max_memory_mb or self.machine_memory_mb, None, None,
                             "the admin's caps (CONDOR_DOCKER_MAX_CPUS/CONDOR_DOCKER_MAX_MEMORY_MB, "
                             "else this machine's size)")

    def resources(self, slot: str) -> SlotResources:
        """The trusted size of `slot`; HOLD when the startd answers and has no such slot."""
        if not isinstance(slot, str) or not SLOT_NAME.match(slot):
            raise Failure(Code.POLICY_REFUSED, f"slot name {str(slot)[:80]!r} is not a slot name like slot1_1")
        ad = self._ask(slot)
        if ad is None:
            return self.caps()
        if ad is _NO_SUCH_SLOT:
            raise Failure(Code.POLICY_REFUSED, f"the startd of this machine has no slot {slot}: "
                                               "the job's _CONDOR_SLOT or .machine.ad was changed")
        cpus, memory = _number(ad, "Cpus"), _number(ad, "Memory")
        if not cpus or not memory:
            log.warning("slot %s ad has no Cpus/Memory (%s): using the admin's caps", slot, ad)
            return self.caps()
        caps = self.caps()
        return SlotResources(min(cpus, caps.cpus), min(memory, caps.memory_mb), _number(ad, "Disk"),
                             _number(ad, "GPUs"), f"the startd's slot {ad.get('Name') or slot}")

    def _ask(self, slot: str):
        if self.query is None:
            return None
        with self._lock:
            if time.monotonic() < self._no_startd_until:
                return None
        found: list = []
        failed: list = []

        def ask() -> None:
            try:
                found.append(self.query(slot))
            except NoStartd as err:
                failed.append(str(err))
            except Exception as err:  # any binding error counts as no answer
                failed.append(f"{type(err).__name__}: {err}")

        worker = threading.Thread(target=ask, daemon=True, name="slot-query")
        worker.start()
        worker.join(QUERY_TIMEOUT)
        if found:
            return found[0] if found[0] is not None else _NO_SUCH_SLOT
        with self._lock:
            self._no_startd_until = time.monotonic() + NO_STARTD_RETRY
        log.info("no startd answered for slot %s (%s): using the admin's caps for %.0f s", slot,
                 failed[0] if failed else f"no answer in {QUERY_TIMEOUT:.0f} s", NO_STARTD_RETRY)
        return None


_NO_SUCH_SLOT = object()


def check_claim(what: str, claimed: int | None, trusted: int | None, unit: str, resources: SlotResources) -> None:
    """HOLD when the job's ad claims more than the trusted source gives."""
    if claimed is None or trusted is None or claimed <= trusted:
        return
    raise Failure(Code.POLICY_REFUSED,
                  f"the job claims {what} = {claimed}{unit} but {resources.source} gives {trusted}{unit}: "
                  f".machine.ad in the scratch dir was changed, or request_{what.lower()} is above what "
                  "this machine offers; resubmit with a smaller request")
