"""Submit file -> job ads, for the local runner (`condor_docker run job.sub`).

htcondor2.Submit does the parsing, macro expansion and queue-statement item
expansion (its `jobs()` is not implemented, and there is no schedd, so the
last step, submit commands -> job attributes, is here, writing the attributes
condor_submit writes).  Nothing is silently ignored: every command is either in
HONOURED (mapped, and the runner acts on it as a pool would) or in REFUSED (the
submit file is refused with one line naming it and why); a word that is neither
is a macro, as for condor_submit, but one that is a near miss of a command
(`docker_netwrk_type`) gets a warning naming the command it probably meant.
docs/USERS.md has the table of every command and what the EP and the local runner do.
"""
from __future__ import annotations

import difflib
import getpass
import math
import os
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import classad2
import htcondor2

from ..core import ads
from ..core.arguments import (
    ArgumentSyntaxError,
    _env_to_v2_raw,
    parse_env_v2,
    submit_arguments_to_ad,
    submit_environment_to_ad,
)


class SubmitError(ValueError):
    """The submit file cannot be run; the message names the command and the fix."""


@dataclass(frozen=True)
class Proc:
    """One queued job: its ad, and where its files live on the submit side."""
    ad: classad2.ClassAd
    iwd: str
    transfer_input: tuple[str, ...]
    transfer_output: tuple[str, ...] | None   # None: every new or changed top-level file
    output_remaps: tuple[tuple[str, str], ...] = ()   # transfer_output_remaps: (name, destination)


_MEMORY_UNITS = {"": 1, "K": Fraction(1, 1024), "M": 1, "G": 1024, "T": 1024 * 1024}


def _size(text: str, command: str, units: dict, examples: str) -> int:
    """A number with an optional unit, in whole units rounded up, as condor_submit writes it.

    Exact (no float): `5.5` is 6 and `0` stays 0, so a request under a floor is
    refused for what it is (localmachine.check_fits), not shown as 1 or 5.
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)B?\s*", text or "", re.I)
    try:
        amount = Fraction(match.group(1)) if match else None
    except ValueError:   # more digits than Python converts (sys.get_int_max_str_digits)
        amount = None
    if amount is None:
        raise SubmitError(f"{command} = {text!r} is not a size: write e.g. {examples}")
    return math.ceil(amount * units[match.group(2).upper()])


def parse_memory_mb(text: str, command: str = "request_memory") -> int:
    """`64`, `64M`, `1G`, `512 MB` -> megabytes (a bare number is MB, as in condor_submit)."""
    return _size(text, command, _MEMORY_UNITS, "128, 512M or 2G")


# Commands the local runner honours (lower case).  Policy commands become the
# attributes condor_submit writes and local/userpolicy.py evaluates them.
HONOURED = frozenset("""
universe docker_image executable transfer_executable arguments args environment env getenv
input output error log initialdir iwd request_cpus request_memory request_disk request_gpus
requirements rank docker_network_type docker_pull_policy docker_override_entrypoint
transfer_input_files transfer_output_files transfer_output_remaps should_transfer_files
when_to_transfer_output on_exit_remove on_exit_hold on_exit_hold_reason on_exit_hold_subcode
max_retries success_exit_code periodic_remove periodic_hold periodic_hold_reason periodic_hold_subcode
batch_name notification queue
""".split())

# Commands condor_submit accepts that the local runner cannot honour, with why.
REFUSED = {
    "periodic_release": "held jobs stay held in condor_docker run (there is no queue to release them into)",
    "hold": "a job submitted on hold would never run without a schedd",
    "retry_until": "not supported; use max_retries with on_exit_remove",
    "deferral_time": "no schedd here to defer the start",
    "cron_minute": "no schedd here to run crontab jobs",
    "cron_hour": "no schedd here to run crontab jobs",
    "on_exit_remove_reason": "not an HTCondor command",
    "periodic_remove_reason": "not supported here",
    "next_job_start_delay": "jobs run one after another here already",
    "leave_in_queue": "there is no queue",
    "concurrency_limits": "there is no negotiator to count limits",
    "checkpoint_exit_code": "checkpointing is not supported",
    "transfer_checkpoint_files": "checkpointing is not supported",
    "stream_output": "output is written straight to the file already; remove it",
    "stream_error": "output is written straight to the file already; remove it",
    "container_service_names": "no port forwarding on one machine",
    "docker_send_credentials": "registry credentials are not sent: pull the image yourself first "
                               "(docker pull) or use a public one",
    "notify_user": "no mail is sent by condor_docker run",
    "x509userproxy": "credentials are not handled",
    "use_oauth_services": "credentials are not handled",
    "transfer_plugins": "only local files are transferred",
    "output_destination": "outputs go back to the submit directory only",
    "allowed_execute_duration": "not supported; use periodic_remove on RemoteWallClockTime",
    "allowed_job_duration": "not supported; use periodic_remove on RemoteWallClockTime",
    "kill_sig": "not supported here: the job gets SIGTERM, then SIGKILL",
    "nice_user": "there is no negotiator",
    "accounting_group": "there is no negotiator",
    "priority": "jobs run in queue order",
    "coresize": "not supported",
    "docker_extra_arguments": "not a submit command: DOCKER_EXTRA_ARGUMENTS is an admin knob",
}


def check_commands(submit: htcondor2.Submit) -> list[str]:
    """Refuse what cannot be honoured (SubmitError); warnings for near misses of a command."""
    warnings: list[str] = []
    known = sorted(HONOURED | set(REFUSED))
    for key in submit.keys():
        name = key.lower()
        if name.startswith(("+", "my.")) or name in HONOURED:
            continue
        if name in REFUSED:
            raise SubmitError(f"{key}: refused by condor_docker run: {REFUSED[name]}")
        guess = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        if guess:
            warnings.append(f"warning: {key} is not a submit command (taken as a macro); "
                            f"did you mean {guess[0]}?")
    return warnings


_DISK_UNITS = {"": 1, "K": 1, "M": 1024, "G": 1024 * 1024, "T": 1024 * 1024 * 1024}


def parse_disk_kb(text: str, command: str = "request_disk") -> int:
    """request_disk: a bare number is KiB, as in condor_submit; `1G`, `500M` also work."""
    return max(1, _size(text, command, _DISK_UNITS, "1G or 500M"))


def parse_remaps(text: str) -> tuple[tuple[str, str], ...]:
    """transfer_output_remaps = "a = b; c = dir/d": output name -> destination (relative to iwd)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    remaps = []
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        name, equals, destination = entry.partition("=")
        if not equals or not name.strip() or not destination.strip():
            raise SubmitError(f"transfer_output_remaps entry {entry!r} is not NAME = DESTINATION")
        remaps.append((name.strip(), destination.strip()))
    return tuple(remaps)


def _getenv(value: str, environment: str | None) -> str:
    """The job's Environment with the submitter's variables (`getenv`) underneath it.

    `true` takes every variable; otherwise a comma/space list of names, `*`
    wildcards allowed (HTCondor 10).  The job's own `environment` wins.
    """
    import fnmatch
    if value.lower() in ("false", "no", "0", ""):
        return environment or ""
    patterns = ["*"] if value.lower() in ("true", "yes", "1") else list(_split_list(value))
    env = {name: val for name, val in os.environ.items()
           if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns) and "\n" not in val}
    env.update(parse_env_v2(environment) if environment else {})
    return _env_to_v2_raw(env)


def _policy_attrs(submit: htcondor2.Submit, ad: classad2.ClassAd) -> None:
    """on_exit_*, periodic_*, max_retries -> the attributes condor_submit writes."""
    expressions = (("on_exit_remove", "OnExitRemove"), ("on_exit_hold", "OnExitHold"),
                   ("on_exit_hold_reason", "OnExitHoldReason"), ("on_exit_hold_subcode", "OnExitHoldSubCode"),
                   ("periodic_remove", "PeriodicRemove"), ("periodic_hold", "PeriodicHold"),
                   ("periodic_hold_reason", "PeriodicHoldReason"), ("periodic_hold_subcode", "PeriodicHoldSubCode"))
    for command, attr in expressions:
        value = _expand(submit, command)
        if value:
            ad[attr] = _expression(command, value)
    retries = _expand(submit, "max_retries")
    success = _expand(submit, "success_exit_code")
    if success:
        if not success.lstrip("-").isdigit():
            raise SubmitError(f"success_exit_code = {success!r} is not an integer")
        ad["JobSuccessExitCode"] = int(success)
    if retries:
        if not retries.isdigit():
            raise SubmitError(f"max_retries = {retries!r} is not a whole number")
        ad["JobMaxRetries"] = int(retries)
        # condor_submit's fold (checked against `condor_submit -dry-run` in tests/unit/local/test_submit_vs_condor.py)
        fold = f"NumJobCompletions > JobMaxRetries || ExitCode =?= {'JobSuccessExitCode' if success else 0}"
        previous = ad.lookup("OnExitRemove") if "OnExitRemove" in ad else None
        ad["OnExitRemove"] = classad2.ExprTree(f"{fold} || ({previous})" if previous is not None else fold)
        if "OnExitHold" not in ad:
            ad["OnExitHold"] = False


def _bounded(command: str, text: str) -> None:
    """Refuse what would crash libclassad: a 200,000-term `64+0+0...` is a SIGSEGV in it (core/ads.py's rule)."""
    too_big = ads.expression_too_big(text)
    if too_big:
        raise SubmitError(f"{command}: the expression {too_big}; write a shorter one")


def _expression(command: str, text: str) -> classad2.ExprTree:
    """A command's value as a ClassAd expression, bounded before classad2 sees it."""
    _bounded(command, text)
    try:
        return classad2.ExprTree(text)
    except Exception as err:   # classad2 raises ClassAdException / ValueError
        raise SubmitError(f"{command} = {text!r} is not a ClassAd expression: {err}") from err


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)


MAX_JOBS = 10000    # one after another on one machine: more is a typo (an extra digit), not a plan


def _queue_plan(submit: htcondor2.Submit) -> tuple[int, list[dict]]:
    """(procs per item, items) from the queue statement; `queue` alone is one proc.

    An item list that turns out empty (`queue x in ()`, `from` an empty file, `matching`
    nothing) queues no job, as condor_submit says ("only empty queue commands").
    """
    qargs = (submit.getQArgs() or "").strip()
    counted = re.match(r"(\d+)(?:\s+|$)", qargs)
    count = int(counted.group(1)) if counted else 1
    has_items = bool(qargs[counted.end():] if counted else qargs)   # words after the count: an item list
    try:
        items = submit.itemdata()
    except Exception as err:
        raise SubmitError(f"cannot expand the queue statement 'queue {qargs}': {err}") from err
    rows: list[dict] = []
    for item in items or []:
        rows.append(item if isinstance(item, dict) else {"Item": item})
    return count, rows or ([] if has_items else [{}])


def _expand(submit: htcondor2.Submit, key: str) -> str | None:
    """The command's value, macros expanded; None when it is unset or empty.

    condor_submit takes `arguments =` (or a value whose macros expand to nothing)
    as if the command were absent; htcondor2's expand() raises KeyError for it.
    """
    if key not in submit:
        return None
    try:
        value = submit.expand(key).strip()
    except KeyError:
        return None
    return value or None


def _parse_count(text: str, command: str) -> int:
    if not text.strip().isdigit():
        raise SubmitError(f"{command} = {text!r} is not a whole number")
    return int(text)


# The largest integer a ClassAd holds (int64): a bigger request is stored as this, which no
# machine has, so localmachine.check_fits refuses it as too big (classad2 raises SystemError
# on a bigger Python int).
MAX_REQUEST = 2 ** 63 - 1


def _requested(submit: htcondor2.Submit, command: str, ad: classad2.ClassAd,
               parse: Callable[[str, str], int], default: str | None = None) -> int:
    """A request_* command as condor_submit takes it: a number (with units), or a ClassAd expression.

    condor_submit keeps an expression (`ifThenElse(MemoryUsage =!= undefined, MemoryUsage * 3/2, 2048)`)
    and the startd evaluates it against the job at match time; here it is evaluated once against
    the new job's ad, where MemoryUsage and the like are still undefined.  At most MAX_REQUEST.
    """
    text = _expand(submit, command) or default or ""
    _bounded(command, text)
    try:
        return min(parse(text, command), MAX_REQUEST)
    except SubmitError as not_plain:
        try:
            value = classad2.ExprTree(text).eval(ad)
        except Exception:   # classad2 raises ClassAdException / ValueError for what is no expression
            raise SubmitError(f"{not_plain}, or an expression that gives a positive number for a new job "
                              "(this is no ClassAd expression)") from None
        # classad2.Value (undefined, error) is an int too
        if isinstance(value, (bool, classad2.Value)) or not isinstance(value, (int, float)) or not value > 0:
            raise SubmitError(f"{not_plain}, or an expression that gives a positive number for a new job "
                              f"(here it gives {_in_classad_words(value)})") from None
        return MAX_REQUEST if value >= MAX_REQUEST else math.ceil(value)


def _in_classad_words(value: object) -> str:
    """A value as the ClassAd language writes it (undefined, true, "text"), never Python's (None, True)."""
    if value is None or isinstance(value, classad2.Value):
        return value.name.lower() if value is not None else "undefined"
    if isinstance(value, list):
        return "{" + ", ".join(_in_classad_words(item) for item in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _bool(value: str | None, command: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise SubmitError(f"{command} = {value!r} is not true or false")


def _job_ad(submit: htcondor2.Submit, cluster: int, proc: int, submit_dir: str) -> Proc:
    universe = (_expand(submit, "universe") or "vanilla").lower()
    if universe != "docker":
        raise SubmitError(f"universe = {universe}: condor_docker runs only universe = docker jobs")
    image = _expand(submit, "docker_image")
    if not image:
        raise SubmitError("no docker_image: add docker_image = <registry>/<image>:<tag>")
    iwd = os.path.normpath(os.path.join(submit_dir, _expand(submit, "initialdir") or "."))
    ad = classad2.ClassAd()
    ad["ClusterId"] = cluster
    ad["ProcId"] = proc
    now = int(time.time())
    # what condor_submit and the schedd put in a new job's ad (policy expressions read them)
    for attr, value in (("QDate", now), ("JobStatus", 1), ("EnteredCurrentStatus", now), ("CommittedTime", 0),
                        ("ExitStatus", 0), ("NumRestarts", 0), ("NumJobStarts", 0), ("NumJobCompletions", 0),
                        ("RemoteWallClockTime", 0.0), ("RemoteUserCpu", 0.0), ("RemoteSysCpu", 0.0),
                        ("CumulativeSuspensionTime", 0), ("LastSuspensionTime", 0)):
        ad[attr] = value
    ad["JobUniverse"] = 5
    ad["WantDocker"] = True
    ad["DockerImage"] = image
    ad["Owner"] = getpass.getuser()
    ad["Iwd"] = iwd
    ad["RequestCpus"] = _requested(submit, "request_cpus", ad, _parse_count, "1")
    ad["RequestMemory"] = _requested(submit, "request_memory", ad, parse_memory_mb, "128")
    for command, attr, parse in (("request_disk", "RequestDisk", parse_disk_kb),
                                 ("request_gpus", "RequestGPUs", _parse_count)):
        if _expand(submit, command):
            ad[attr] = _requested(submit, command, ad, parse)
    for command, attr in (("requirements", "Requirements"), ("rank", "Rank")):
        value = _expand(submit, command)
        if value:
            ad[attr] = _expression(command, value)
    if _expand(submit, "batch_name"):
        ad["JobBatchName"] = _expand(submit, "batch_name")
    notification = (_expand(submit, "notification") or "never").lower()
    if notification != "never":
        raise SubmitError(f"notification = {notification}: condor_docker run sends no mail; write never or remove it")
    for command, allowed in (("should_transfer_files", ("yes", "if_needed")),
                             ("when_to_transfer_output", ("on_exit", "on_exit_or_evict", "on_success"))):
        value = (_expand(submit, command) or allowed[0]).lower()
        if value not in allowed:
            raise SubmitError(f"{command} = {value}: condor_docker run always transfers files on exit; "
                              f"write {' or '.join(allowed)}")
    _policy_attrs(submit, ad)
    executable = _expand(submit, "executable")
    transfer_executable = _bool(_expand(submit, "transfer_executable"), "transfer_executable", True)
    if executable:
        ad["Cmd"] = os.path.join(iwd, executable) if transfer_executable else executable
    ad["TransferExecutable"] = bool(executable) and transfer_executable
    try:
        for command, convert in (("arguments", submit_arguments_to_ad), ("environment", submit_environment_to_ad)):
            value = _expand(submit, command)
            if value:
                attr, raw = convert(value)
                ad[attr] = raw
        getenv = _expand(submit, "getenv")
        if getenv:
            ad["Environment"] = _getenv(getenv, ads_environment(ad))
    except ArgumentSyntaxError as err:
        raise SubmitError(str(err)) from err
    if _expand(submit, "iwd") and not _expand(submit, "initialdir"):
        raise SubmitError("iwd: write initialdir (the submit command) instead")
    for command, attr in (("input", "In"), ("output", "Out"), ("error", "Err"), ("log", "UserLog")):
        value = _expand(submit, command)
        if value:
            ad[attr] = os.path.join(iwd, value)
    for command, attr in (("docker_network_type", "DockerNetworkType"), ("docker_pull_policy", "DockerPullPolicy")):
        value = _expand(submit, command)
        if value:
            ad[attr] = value
    ad["DockerOverrideEntrypoint"] = _bool(_expand(submit, "docker_override_entrypoint"),
                                           "docker_override_entrypoint", False)
    for key in submit.keys():
        if key.startswith("+") or key.upper().startswith("MY."):
            name = key[1:] if key.startswith("+") else key[3:]
            value = _expand(submit, key)   # `+MyAttr =` is undefined, as condor_submit writes it
            ad[name] = _expression(key, value if value is not None else "undefined")
    outputs = _expand(submit, "transfer_output_files")
    return Proc(ad=ad, iwd=iwd,
                transfer_input=_split_list(_expand(submit, "transfer_input_files") or ""),
                transfer_output=_split_list(outputs) if outputs is not None else None,
                output_remaps=parse_remaps(_expand(submit, "transfer_output_remaps") or ""))


def ads_environment(ad: classad2.ClassAd) -> str | None:
    value = ad.get("Environment")
    return value if isinstance(value, str) else None


def load_procs(path: str, cluster: int, warnings: list[str] | None = None) -> list[Proc]:
    """Every job the submit file queues, with its own ad, in proc order (near-miss warnings appended)."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as err:
        raise SubmitError(f"cannot read the submit file {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise SubmitError(f"cannot read the submit file {path}: it is not text (byte {err.object[err.start]:#04x} "
                          f"at offset {err.start} is not UTF-8); give a submit description file") from None
    try:
        base = htcondor2.Submit(text)
    except Exception as err:
        raise SubmitError(f"cannot parse the submit file {path}: {err}") from err
    found = check_commands(base)
    if warnings is not None:
        warnings.extend(found)
    count, items = _queue_plan(base)
    if count * len(items) > MAX_JOBS:
        raise SubmitError(f"queue {(base.getQArgs() or '').strip()}: {count * len(items)} jobs; condor_docker run runs "
                          f"jobs one after another on this machine, at most {MAX_JOBS} per submit file: "
                          "queue fewer, or submit to a pool")
    submit_dir = os.path.dirname(os.path.abspath(path))
    procs: list[Proc] = []
    for row, item in enumerate(items):
        for step in range(count):
            submit = htcondor2.Submit(str(base))
            proc = len(procs)
            macros = {"Cluster": cluster, "ClusterId": cluster, "Process": proc, "ProcId": proc,
                      "Step": step, "Row": row, "ItemIndex": row, **item}
            for name, value in macros.items():
                submit[name] = str(value)
            procs.append(_job_ad(submit, cluster, proc, submit_dir))
    return procs
