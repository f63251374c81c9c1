"""Delayed job attributes through Chirp: how a running job tells the schedd why it ended.

The launcher cannot hold its own job (see the contract, section 3); what reaches
the schedd is a delayed attribute set through the starter's Chirp server
(`_CONDOR_CHIRP_CONFIG`), whose name must match `_CHIRP_DELAYED_UPDATE_PREFIX`
(`Chirp*`).  An access-point job transform turns them into a hold.  Chirp is a
courtesy: when it fails the job still ends with a clear exit status and stderr
line, so a failure here is reported on stderr and never raised.

Stdlib + htchirp + core/chirpnames only (the launcher imports this; no docker, no htcondor2).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping, TextIO

from ..core.chirpnames import HOLD_REASON, HOLD_SUBCODE, OOM, REQUEUE_REASON

MARKS = (HOLD_REASON, HOLD_SUBCODE, OOM, REQUEUE_REASON)   # what the access-point transform acts on


class _Undefined:
    """The ClassAd value `undefined`: how a mark of an earlier run is taken back."""


UNDEFINED = _Undefined()


def classad_literal(value: Any) -> str:
    """A Python value as a ClassAd literal (the value Chirp sends is an expression)."""
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{text}"'


def clear_stale_marks(job_ad: Any, stderr: TextIO | None = None) -> bool:
    """Take back the marks an earlier run of this job left (a released hold, a requeue).

    Delayed attributes stay in the schedd's ad: without this, a job released after
    an out-of-memory hold would be held again when it then exits normally, and a
    requeued one requeued forever.  Only marks the job ad actually has are sent.
    """
    stale = [name for name in MARKS if job_ad is not None and name in job_ad]
    if not stale:
        return False
    return set_delayed({name: UNDEFINED for name in stale}, stderr=stderr)


def config_beside(scratch_dir: str) -> str:
    """The starter's Chirp config for a hook, which has no `_CONDOR_CHIRP_CONFIG`.

    25.0 writes it into the scratch dir; 25.13 into `dir_<pid>/user/`, beside
    `scratch/` (the environment variable, when set, always wins).
    """
    for candidate in (os.path.join(scratch_dir, ".chirp.config"),
                      os.path.join(os.path.dirname(os.path.normpath(scratch_dir)), "user", ".chirp.config")):
        if os.path.isfile(candidate):
            return candidate
    return os.path.join(scratch_dir, ".chirp.config")


def set_delayed(attributes: Mapping[str, Any], *, config: str | None = None,
                stderr: TextIO | None = None, timeout: float = 10.0) -> bool:
    """Set each attribute as a delayed job attribute; False (and one stderr line) on any failure."""
    stderr = stderr or sys.stderr
    config = config or os.environ.get("_CONDOR_CHIRP_CONFIG")
    if not config or not os.path.isfile(config):
        print(f"condor_docker: cannot report {', '.join(attributes)} to the schedd: "
              "no Chirp configuration (_CONDOR_CHIRP_CONFIG)", file=stderr)
        return False
    try:
        import htchirp

        with open(config, encoding="utf-8") as stream:
            host, port, cookie = stream.read().split()[:3]
        client = htchirp.HTChirp(host=host, port=int(port), cookie=cookie, timeout=timeout)
        with client:
            for name, value in attributes.items():
                client.set_job_attr_delayed(name, classad_literal(value))
        return True
    except Exception as err:  # noqa: BLE001 -- any Chirp problem is reported, never fatal
        print(f"condor_docker: cannot report {', '.join(attributes)} to the schedd through Chirp: {err}",
              file=stderr)
        return False
