"""Job policy expressions for the local runner, evaluated as the schedd and shadow do.

A pool evaluates a job's policy at fixed moments: `OnExitHold` then
`OnExitRemove` when the job exits (the shadow), `PeriodicHold` then
`PeriodicRemove` every PERIODIC_EXPR_INTERVAL seconds while it is queued (the
schedd).  `max_retries` is not a policy of its own: condor_submit folds it
into `OnExitRemove` (`NumJobCompletions > JobMaxRetries || ExitCode == <success
code>`), and so does `submitfile.py`.  Every expression is a classad2 ExprTree
evaluated against the job's own ad, with the attributes HTCondor keeps up to
date (`ExitCode`, `ExitBySignal`, `ExitSignal`, `NumJobStarts`,
`NumJobCompletions`, `JobStatus`, `EnteredCurrentStatus`, `RemoteWallClockTime`)
set first, so an expression that works in a pool works here.  As in HTCondor's
UserPolicy, an expression that does not evaluate to a number or boolean
(undefined, an error, a string) holds the job with HoldReasonCode 5 and
"... evaluated to UNDEFINED", except the literal `undefined`, which is false;
at exit the periodic expressions are checked first, then OnExitHold, OnExitRemove.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import classad2

from ..core.failures import HoldReasonCode

# JobStatus values (HTCondor's)
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class UserPolicyDecision:
    """What the policy says: `hold`, `remove`, `requeue` (exit not accepted: run again) or `done`."""
    action: str
    reason: str = ""
    code: int = 0
    subcode: int = 0


def _value(ad: classad2.ClassAd, attr: str) -> bool | None:
    """The policy attribute as HTCondor reads it: True/False, or None when it does not evaluate.

    Missing and the literal `undefined` are false; numbers count as booleans.
    """
    if attr not in ad:
        return False
    if str(ad.lookup(attr)).strip().lower() == "undefined":
        return False
    try:
        value = ad.eval(attr)
    except Exception:
        return None
    if value is True or value is False:
        return value
    # classad2 gives Undefined/Error as enum members (ints): only real numbers count
    if type(value) in (int, float):
        return value != 0
    return None


def _fired(ad: classad2.ClassAd, attr: str, action: str) -> UserPolicyDecision | None:
    """The decision when `attr` fires (true: `action`; not evaluable: hold code 5), else None."""
    value = _value(ad, attr)
    if value is False:
        return None
    text = _expression_text(ad, attr)
    if value is None:
        return UserPolicyDecision("hold", f"The job attribute {attr} expression '{text}' evaluated to UNDEFINED",
                                  HoldReasonCode.JOB_POLICY_UNDEFINED, 0)
    reason = _string(ad, f"{attr}Reason") or f"The job attribute {attr} expression '{text}' evaluated to TRUE"
    if action == "hold":
        return UserPolicyDecision("hold", reason, HoldReasonCode.JOB_POLICY, _int(ad, f"{attr}SubCode"))
    return UserPolicyDecision(action, reason)


def _expression_text(ad: classad2.ClassAd, attr: str) -> str:
    expr = ad.lookup(attr)
    return str(expr)


def _string(ad: classad2.ClassAd, attr: str) -> str | None:
    try:
        value = ad.eval(attr) if attr in ad else None
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def _int(ad: classad2.ClassAd, attr: str, default: int = 0) -> int:
    try:
        value = ad.eval(attr) if attr in ad else default
    except Exception:
        return default
    return int(value) if type(value) in (int, float) else default


def mark_running(ad: classad2.ClassAd, now: float | None = None) -> None:
    """The job starts a run: what the shadow records at execute time."""
    now = time.time() if now is None else now
    ad["NumJobStarts"] = _int(ad, "NumJobStarts") + 1
    ad["JobStatus"] = RUNNING
    ad["EnteredCurrentStatus"] = int(now)
    ad["JobCurrentStartDate"] = int(now)
    ad["ServerTime"] = int(now)


def update_wall_clock(ad: classad2.ClassAd, run_started: float, now: float | None = None) -> None:
    """RemoteWallClockTime = previous runs + this run so far (the schedd's periodic update)."""
    now = time.time() if now is None else now
    previous = ad.get("CommittedTime", 0) or 0
    ad["RemoteWallClockTime"] = float(previous) + max(0.0, now - run_started)
    ad["ServerTime"] = int(now)


def periodic(ad: classad2.ClassAd) -> UserPolicyDecision | None:
    """PeriodicHold, then PeriodicRemove, as the schedd checks them; None when neither fires."""
    return _fired(ad, "PeriodicHold", "hold") or _fired(ad, "PeriodicRemove", "remove")


def record_exit(ad: classad2.ClassAd, exit_code: int | None, signal: int | None,
                run_started: float, now: float | None = None) -> None:
    """What the shadow writes into the job ad when the job process exits."""
    now = time.time() if now is None else now
    update_wall_clock(ad, run_started, now)
    ad["CommittedTime"] = ad["RemoteWallClockTime"]
    ad["NumJobCompletions"] = _int(ad, "NumJobCompletions") + 1
    ad["ExitBySignal"] = signal is not None
    if signal is not None:
        ad["ExitSignal"] = int(signal)
        if "ExitCode" in ad:
            del ad["ExitCode"]
    else:
        ad["ExitCode"] = int(exit_code if exit_code is not None else 0)
    ad["CompletionDate"] = int(now)


def on_exit(ad: classad2.ClassAd) -> UserPolicyDecision:
    """The shadow at exit: the periodic expressions, OnExitHold, then OnExitRemove (default true)."""
    decision = periodic(ad) or _fired(ad, "OnExitHold", "hold")
    if decision is not None:
        return decision
    if "OnExitRemove" not in ad:
        return UserPolicyDecision("done")
    value = _value(ad, "OnExitRemove")
    if value is None:
        return UserPolicyDecision("hold", f"The job attribute OnExitRemove expression "
                                          f"'{_expression_text(ad, 'OnExitRemove')}' evaluated to UNDEFINED",
                                  HoldReasonCode.JOB_POLICY_UNDEFINED, 0)
    if value:
        return UserPolicyDecision("done")
    return UserPolicyDecision("requeue", f"The job attribute OnExitRemove expression "
                                         f"'{_expression_text(ad, 'OnExitRemove')}' evaluated to FALSE")
