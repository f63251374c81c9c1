"""core/argparsing.py on the hooks' start: no shutil for the help width, help texts computed when asked."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from condor_docker.core import argparsing

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("columns", [None, "132", "0", "-5", "wide"])
def test_the_help_width_is_shutils(columns, monkeypatch):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert argparsing.terminal_columns() == shutil.get_terminal_size().columns


def test_a_help_text_given_later_is_computed_only_for_the_help():
    asked = []
    parser = argparsing.Parser(prog="t")
    option = parser.add_argument("--socket", help="the socket")
    parser.help_when_asked(option, lambda: asked.append(1) or "the socket (default: /run/x.sock)")
    assert parser.parse_args(["--socket", "/s"]).socket == "/s" and asked == []
    assert "the socket (default: /run/x.sock)" in parser.format_help() and asked == [1]


def test_building_a_parser_imports_no_shutil():
    code = ("import sys\nfrom condor_docker.core.argparsing import Parser\n"
            "p = Parser(prog='t'); p.add_argument('--x'); p.parse_args(['--x', '1'])\nprint('shutil' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.stdout.strip() == "False", done.stdout + done.stderr
