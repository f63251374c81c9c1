"""condor_reconfig: condor_master sends the agent SIGHUP; the agent re-reads its knobs.

Without a handler, SIGHUP's default action kills the process: every condor_reconfig on
an execute point (admins run it for any config change, not only ours) would kill the
agent, leave HasDocker false until the master's restart backoff ran out, and send the
jobs starting meanwhile back to idle.  Instead:

    nothing of ours changed          one log line, nothing else
    a knob, or the installed         restart in place:
    condor_docker version, changed the same pid (the master sees no
                                     exit), the same listening socket (a hook connecting
                                     meanwhile waits in the listen queue, it is never
                                     refused), running jobs reattached as after any restart
    the new configuration is bad     one log line naming the knob; the running one is kept

Restarting in place (exec) is the one path that applies every knob the same way as a
fresh start; the settings are never patched while connections are being served.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import stat
import sys
import threading
from dataclasses import dataclass, field

from ..core.settings import (
    KNOBS,
    OverrideError,
    Settings,
    SettingsError,
    field_name,
    htcondor_text_lookup,
    settings_from_command_line,
)
from ..host.logfiles import LogConfigError, Rotation

log = logging.getLogger("condor_docker.agent")

# The listening socket handed over the exec: "<fd>:<socket path>".  Set by the agent for
# its own next image only (condor_master's environment for the agent never has it).
LISTENER_ENV = "_CONDOR_DOCKER_AGENT_LISTENER"


def reload_htcondor_config() -> None:
    """Re-read HTCondor's configuration files (htcondor2.param reads them once per process)."""
    import htcondor2
    htcondor2.reload_config()


def check_log_knobs() -> None:
    """What the next image reads at start besides the settings: MAX_CONDOR_DOCKER_LOG and friends.

    A value it cannot use would stop it (exit 78) after the exec, and condor_reconfig
    must never take docker off the machine: LogConfigError here keeps the running agent.
    """
    Rotation.from_config("CONDOR_DOCKER", htcondor_text_lookup())


def installed_version() -> str:
    """The condor_docker version installed on disk now (read afresh: an upgrade changes it)."""
    from .service import package_version
    return package_version()


def changed_knobs(old: Settings, new: Settings) -> list[str]:
    """The knob names whose value differs (volume definitions count under DOCKER_VOLUMES)."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    changed = [knob.name for knob in KNOBS
               if field_name(knob.name) in fields and getattr(old, field_name(knob.name)) != getattr(new, field_name(knob.name))]
    if old.volumes != new.volumes and "DOCKER_VOLUMES" not in changed:
        changed.append("DOCKER_VOLUMES")
    return changed


@dataclass
class Reconfig:
    """Watches for SIGHUP (set `hup` from the handler) and decides: nothing, or restart in place."""
    overrides: list[str]                 # the agent's --set pairs: they still win after a reload
    settings: Settings                   # what the agent runs with
    hup: threading.Event = field(default_factory=threading.Event)
    restart: threading.Event = field(default_factory=threading.Event)
    reload: object = reload_htcondor_config
    version: str = field(default_factory=lambda: installed_version())

    def check(self) -> bool:
        """Re-read the knobs once; True when the agent must restart to apply them."""
        try:
            self.reload()
            new = settings_from_command_line(self.overrides)
            check_log_knobs()
        except (SettingsError, OverrideError, LogConfigError) as err:
            log.error("condor_reconfig: the new configuration is not usable, keeping the running one: %s", err)
            return False
        except Exception as err:   # noqa: BLE001 - HTCondor's reader: never let it stop the agent
            log.error("condor_reconfig: cannot re-read HTCondor's configuration, keeping the running one: %s", err)
            return False
        changed = changed_knobs(self.settings, new)
        now_installed = installed_version()
        if now_installed != self.version:
            changed.append(f"the installed condor_docker ({self.version} -> {now_installed})")
        if not changed:
            log.info("condor_reconfig: no condor_docker knob changed")
            return False
        log.info("condor_reconfig: %s changed: restarting in place (same pid and socket; running jobs "
                 "are reattached)", ", ".join(changed))
        return True

    def watch(self, stop: threading.Event) -> None:
        """Until `stop`: on each SIGHUP, check; a needed restart sets `restart` and `stop`."""
        while not stop.is_set():
            if not self.hup.wait(0.5):
                continue
            self.hup.clear()
            if self.check():
                self.restart.set()
                stop.set()


def restart_in_place(listener: socket.socket, path: str) -> None:
    """exec this agent again with the same argv, handing it the listening socket (never returns)."""
    os.set_inheritable(listener.fileno(), True)
    env = dict(os.environ, **{LISTENER_ENV: f"{listener.fileno()}:{path}"})
    logging.shutdown()
    os.execve(sys.executable, sys.orig_argv, env)


def inherited_listener(path: str) -> socket.socket | None:
    """The listening socket a previous image of this agent handed over, if it is one for `path`.

    Checked on the fd, not trusted from the variable: a unix stream socket, listening,
    bound to `path`.  Anything else is closed and a fresh socket is bound instead.
    """
    value = os.environ.pop(LISTENER_ENV, None)
    if not value:
        return None
    fd_text, _, named = value.partition(":")
    try:
        fd = int(fd_text)
        is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except (ValueError, OSError) as err:
        log.warning("ignoring %s=%r: %s", LISTENER_ENV, value, err)
        return None
    if not is_socket:
        log.warning("ignoring %s=%r: not a socket", LISTENER_ENV, value)
        os.close(fd)
        return None
    listener = socket.socket(fileno=fd)
    listener.set_inheritable(False)
    try:
        usable = (listener.family == socket.AF_UNIX and listener.type == socket.SOCK_STREAM
                  and named == path and listener.getsockname() == path
                  and listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
                  and stat.S_ISSOCK(os.lstat(path).st_mode))
    except OSError:
        usable = False
    if not usable:
        log.warning("ignoring %s=%r: not the listening socket on %s", LISTENER_ENV, value, path)
        listener.close()
        return None
    return listener

