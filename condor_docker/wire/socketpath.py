"""Which socket a client talks to the agent on: the one resolver.

    agent_socket(explicit)   the --socket value, else $CONDOR_DOCKER_AGENT_SOCKET,
                             else the knob's default (core/settings.py's knob table)

The agent itself listens where its HTCondor configuration says
(CONDOR_DOCKER_AGENT_SOCKET, same knob, same default); the hooks are told the
path with --socket by that configuration, so the environment and the
default only matter for commands run by hand and for old config files.

`DEFAULT_SOCKET` (the knob's default) is read from the knob table on first
use: the JOB_EXIT hook, which the starter waits for, is always told its
socket and so never imports core/settings.py.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False   # typing is not imported at run time: the JOB_EXIT hook starts through this module
if TYPE_CHECKING:
    from typing import Any

KNOB = "CONDOR_DOCKER_AGENT_SOCKET"      # the knob, and the environment variable of the same name


def default_socket() -> str:
    """The CONDOR_DOCKER_AGENT_SOCKET knob's default, from the knob table."""
    from ..core.settings import KNOBS
    return next(knob.default for knob in KNOBS if knob.name == KNOB)


def agent_socket(explicit: str | None = None) -> str:
    """The explicit path (when not empty), else $CONDOR_DOCKER_AGENT_SOCKET, else the knob's default."""
    return explicit or os.environ.get(KNOB) or default_socket()


def default_help() -> str:
    """For --socket help texts: where a client looks when not told."""
    return f"${KNOB}, else {default_socket()}"


def __getattr__(name: str) -> Any:   # DEFAULT_SOCKET, computed when first asked for
    if name == "DEFAULT_SOCKET":
        return default_socket()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
