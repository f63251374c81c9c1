"""The argument parser every `condor_docker` subcommand of ours builds on.

argparse's own way out of a bad command line is a usage block and exit 2, which
`condor_docker run` uses for a bad submit file; ours is one line naming the
problem and where to read more, and exit USAGE (core/exitcodes.py).  Help shows
each option's default, unless it has none worth showing.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Callable, NoReturn

from . import exitcodes

_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without shutil (bz2, lzma, fnmatch): argparse imports it
    for every add_argument, a few ms on each hook's start."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class DefaultsFormatter(argparse.HelpFormatter):
    """Like ArgumentDefaultsHelpFormatter, without "(default: None)" or "(default: )" for options that
    have none, nor a second default after a help text that gives its own."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None, **kwargs) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width, **kwargs)   # as argparse's own

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or re.search(r"\bdefault\b", text)
                or action.default in (None, False, [], "", argparse.SUPPRESS)):   # nothing, or said already
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            text += " (default: %(default)s)"
        return text


def socket_path(value: str) -> str:
    """The type of every --socket option (Parser.add_argument gives it): a path, never empty.

    An empty `--socket=` used to mean the default socket (socketpath.agent_socket takes ""
    as "not told"), silently; `job-exit` refuses it with its own usage line.
    """
    if not value:
        raise argparse.ArgumentTypeError("an empty path; name the agent's socket, "
                                         "or leave --socket out for the default")
    return value


_PATH_OPTIONS = frozenset(("--launcher", "--state-dir", "--log"))


def non_empty_path(value: str) -> str:
    """The type of the other path options with a default: `--state-dir=` is a mistake, not the default
    (it was the cluster counter "in ''", exit 73; `--launcher=` was the default launcher, silently)."""
    if not value:
        raise argparse.ArgumentTypeError("an empty path; name one, or leave the option out for its default")
    return value


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
        self._help_later: list[tuple[argparse.Action, Callable[[], str]]] = []

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        if "--socket" in args:   # the one rule for every command's --socket (job-exit parses its own)
            kwargs.setdefault("type", socket_path)
        elif _PATH_OPTIONS.intersection(args):   # and for every other path with a default
            kwargs.setdefault("type", non_empty_path)
        return super().add_argument(*args, **kwargs)

    def help_when_asked(self, action: argparse.Action, text: Callable[[], str]) -> None:
        """`action`'s help is `text()`, computed only when the help is printed (e.g. the default
        socket: wire/socketpath.py reads it from the knob table, which a hook need not import)."""
        self._help_later.append((action, text))

    def format_help(self) -> str:
        for action, text in self._help_later:
            action.help = text()
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}; `{self.prog} --help` lists the options", file=sys.stderr)
        raise SystemExit(self.usage_exit)
