"""Submit file -> job ads, for the local runner (`condor_docker run job.sub`).

htcondor2.Submit does the parsing, macro expansion and queue-statement item
expansion (it cannot make job ads without a schedd, so the last step, submit
commands -> job attributes, is here).  Only the commands a docker-universe job
uses are mapped; an unknown command is kept as a custom attribute only when it
is written `+Attr` or `MY.Attr`, as condor_submit does.
"""
from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass

import classad2
import htcondor2

from .arguments import ArgumentSyntaxError, submit_arguments_to_ad, submit_environment_to_ad


class SubmitError(ValueError):
    """The submit file cannot be run; the message names the command and the fix."""


@dataclass(frozen=True)
class Proc:
    """One queued job: its ad, and where its files live on the submit side."""
    ad: classad2.ClassAd
    iwd: str
    transfer_input: tuple[str, ...]
    transfer_output: tuple[str, ...] | None   # None: every new or changed top-level file


_MEMORY_UNITS = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_memory_mb(text: str, command: str = "request_memory") -> int:
    """`64`, `64M`, `1G`, `512 MB` -> megabytes (a bare number is MB, as in condor_submit)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)B?\s*", text or "", re.I)
    if not match:
        raise SubmitError(f"{command} = {text!r} is not a size: write e.g. 128, 512M or 2G")
    return max(1, int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).upper()]))


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)


def _queue_plan(submit: htcondor2.Submit) -> tuple[int, list[dict]]:
    """(procs per item, items) from the queue statement; `queue` alone is one proc."""
    qargs = (submit.getQArgs() or "").strip()
    count = 1
    first = qargs.split(None, 1)[0] if qargs else ""
    if first.isdigit():
        count = int(first)
    try:
        items = submit.itemdata()
    except Exception as err:
        raise SubmitError(f"cannot expand the queue statement 'queue {qargs}': {err}") from err
    rows: list[dict] = []
    for item in items or []:
        rows.append(item if isinstance(item, dict) else {"Item": item})
    return count, rows or [{}]


def _expand(submit: htcondor2.Submit, key: str) -> str | None:
    if key not in submit:
        return None
    return submit.expand(key).strip()


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
    ad["JobUniverse"] = 5
    ad["WantDocker"] = True
    ad["DockerImage"] = image
    ad["Owner"] = getpass.getuser()
    ad["Iwd"] = iwd
    ad["RequestCpus"] = int(_expand(submit, "request_cpus") or 1)
    ad["RequestMemory"] = parse_memory_mb(_expand(submit, "request_memory") or "128")
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
    except ArgumentSyntaxError as err:
        raise SubmitError(str(err)) from err
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
            try:
                ad[name] = classad2.ExprTree(submit.expand(key))
            except Exception as err:
                raise SubmitError(f"{key} = {submit[key]!r} is not a ClassAd expression: {err}") from err
    outputs = _expand(submit, "transfer_output_files")
    return Proc(ad=ad, iwd=iwd,
                transfer_input=_split_list(_expand(submit, "transfer_input_files") or ""),
                transfer_output=_split_list(outputs) if outputs is not None else None)


def load_procs(path: str, cluster: int) -> list[Proc]:
    """Every job the submit file queues, with its own ad, in proc order."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as err:
        raise SubmitError(f"cannot read the submit file {path}: {err.strerror}") from err
    try:
        base = htcondor2.Submit(text)
    except Exception as err:
        raise SubmitError(f"cannot parse the submit file {path}: {err}") from err
    count, items = _queue_plan(base)
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
