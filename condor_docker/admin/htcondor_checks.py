"""What `condor_docker doctor` checks on the HTCondor side of an execute point.

Each check reads the HTCondor configuration through `lookup` (htcondor2.param in
production, a dict in tests) and returns the detail for an `ok` line, or raises
ConfigProblem naming the knob and what to write: the same wiring config.d/
50-condor_docker-execute.conf sets up, checked one piece at a time.
"""
from __future__ import annotations

import os
import stat
from typing import Callable

Lookup = Callable[[str], "str | None"]
HOOK_KEYWORD = "CONDOR_DOCKER"
AGENT_DAEMON = "CONDOR_DOCKER_AGENT"
CRON_JOB = "CONDOR_DOCKER"
FIX = "install config.d/50-condor_docker-execute.conf (`condor_docker config`) and condor_reconfig"


class ConfigProblem(Exception):
    """A piece of the HTCondor wiring is missing or wrong; the message says which knob and the fix."""


def _words(value: str | None) -> list[str]:
    return (value or "").replace(",", " ").split()


def hooks(lookup: Lookup) -> str:
    keyword = lookup("STARTER_DEFAULT_JOB_HOOK_KEYWORD")
    if keyword != HOOK_KEYWORD:
        raise ConfigProblem(f"STARTER_DEFAULT_JOB_HOOK_KEYWORD = {keyword or '(unset)'}: the starter will not call "
                            f"our hooks; set it to {HOOK_KEYWORD}: {FIX}")
    prepare = lookup(f"{HOOK_KEYWORD}_HOOK_PREPARE_JOB")
    if not prepare:
        raise ConfigProblem(f"{HOOK_KEYWORD}_HOOK_PREPARE_JOB is not set: {FIX}")
    if not os.access(prepare, os.X_OK):
        raise ConfigProblem(f"{HOOK_KEYWORD}_HOOK_PREPARE_JOB = {prepare}: not an executable file; "
                            "point CONDOR_DOCKER_PREFIX at the venv condor_docker is installed in")
    return f"STARTER_DEFAULT_JOB_HOOK_KEYWORD = {HOOK_KEYWORD}, PREPARE_JOB = {prepare}"


def builtin_docker_off(lookup: Lookup) -> str:
    docker = lookup("DOCKER")
    if docker and os.path.isfile(docker) and os.access(docker, os.X_OK):
        raise ConfigProblem(f"DOCKER = {docker}: HTCondor's own docker universe is on too and would advertise "
                            "HasDocker for itself; set DOCKER = /nonexistent")
    return f"DOCKER = {docker or '(unset)'}: HTCondor's own docker universe is off"


def agent_in_daemon_list(lookup: Lookup) -> str:
    daemons = _words(lookup("DAEMON_LIST"))
    if AGENT_DAEMON not in daemons:
        raise ConfigProblem(f"DAEMON_LIST = {' '.join(daemons) or '(unset)'}: no {AGENT_DAEMON}, so condor_master "
                            f"never starts the agent; add it: {FIX}")
    return f"{AGENT_DAEMON} is in DAEMON_LIST"


def startd_cron(lookup: Lookup) -> str:
    jobs = _words(lookup("STARTD_CRON_JOBLIST"))
    if CRON_JOB not in jobs:
        raise ConfigProblem(f"STARTD_CRON_JOBLIST = {' '.join(jobs) or '(unset)'}: no {CRON_JOB}, so the startd "
                            f"never advertises HasDocker; add it: {FIX}")
    executable = lookup(f"STARTD_CRON_{CRON_JOB}_EXECUTABLE")
    if not executable or not os.access(executable, os.X_OK):
        raise ConfigProblem(f"STARTD_CRON_{CRON_JOB}_EXECUTABLE = {executable or '(unset)'}: not an executable "
                            f"file: {FIX}")
    return f"STARTD_CRON_JOBLIST runs {executable} {lookup(f'STARTD_CRON_{CRON_JOB}_ARGS') or ''}".rstrip()


def _condor_uid() -> int | None:
    import pwd
    try:
        return pwd.getpwnam("condor").pw_uid
    except KeyError:
        return None


def execute_owned_right(lookup: Lookup, stat_of: Callable[[str], os.stat_result] = os.stat,
                        condor_uid: int | None = None) -> str:
    condor_uid = _condor_uid() if condor_uid is None else condor_uid
    execute = lookup("EXECUTE")
    if not execute:
        raise ConfigProblem("EXECUTE is not set: HTCondor's default is $(LOCAL_DIR)/execute")
    try:
        info = stat_of(execute)
    except OSError as err:
        raise ConfigProblem(f"EXECUTE = {execute}: {err.strerror}; create it (owned by root, mode 0755)") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigProblem(f"EXECUTE = {execute}: not a directory")
    owners = {0} | ({condor_uid} if condor_uid is not None else set())
    if info.st_uid not in owners:
        raise ConfigProblem(f"EXECUTE = {execute} is owned by uid {info.st_uid}: the agent mounts scratch dirs only "
                            "from an EXECUTE owned by root (or condor); chown root and chmod 0755 it")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigProblem(f"EXECUTE = {execute} is mode {stat.S_IMODE(info.st_mode):04o}: writable by others, "
                            "so the agent refuses its scratch dirs (docs/TRUST-MODEL.md); chmod 0755 it")
    return f"EXECUTE = {execute}, owned by uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}"


CHECKS: tuple[tuple[str, Callable[[Lookup], str]], ...] = (
    ("HTCondor hooks", hooks),
    ("HTCondor docker universe", builtin_docker_off),
    ("HTCondor DAEMON_LIST", agent_in_daemon_list),
    ("HTCondor startd cron", startd_cron),
    ("HTCondor EXECUTE", execute_owned_right),
)
