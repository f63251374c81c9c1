"""`condor_docker config execute|access-point|knob-table|sshd-template`: print generated text.

The text itself comes from core/configfiles.py, the one source the shipped
config.d files, the pool roles and the agent's sshd template share.
"""
from __future__ import annotations

import sys

from ..core.argparsing import Parser
from ..core.configfiles import (
    GENERATORS,
    PREFIX,
    knob_table_markdown,
    sshd_config_template,
)
from ..wire.socketpath import DEFAULT_SOCKET


def main_config(argv: list[str] | None = None) -> int:
    parser = Parser(prog="condor_docker config", description="print a config.d file generated from the knob table")
    parser.add_argument("which", choices=sorted(GENERATORS) + ["knob-table", "sshd-template"])
    parser.add_argument("--bin", default=f"{PREFIX}/bin/condor_docker",
                        help="sshd-template: the condor_docker entry point sessions run")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="sshd-template: the agent's socket")
    args = parser.parse_args(argv)
    if args.which == "sshd-template":
        sys.stdout.write(sshd_config_template(args.bin, args.socket))
    elif args.which == "knob-table":
        sys.stdout.write(knob_table_markdown())
    else:
        sys.stdout.write(GENERATORS[args.which][0]())
    return 0
