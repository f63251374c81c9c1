"""The argument parser every `condor_docker` subcommand of ours builds on.

argparse's own way out of a bad command line is a usage block and exit 2, which
`condor_docker run` uses for a bad submit file; ours is one line naming the
problem and where to read more, and exit USAGE (core/exitcodes.py).  Help shows
each option's default, unless it has none worth showing.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from . import exitcodes

_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


class DefaultsFormatter(argparse.HelpFormatter):
    """Like ArgumentDefaultsHelpFormatter, without "(default: None)" for options that have none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, usage_exit: int = exitcodes.USAGE, **kwargs) -> None:
        """`usage_exit`: the code for a bad command line (pool-node keeps its documented 2)."""
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)
        self.usage_exit = usage_exit
        # argparse takes only `-1` and `-1.5` as negative numbers: `--retry-delay -1e308` would
        # read as a missing value ("expected one argument") instead of reaching the option's
        # own range check, which names the problem. None of our options looks like a number.
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}; `{self.prog} --help` lists the options", file=sys.stderr)
        raise SystemExit(self.usage_exit)
