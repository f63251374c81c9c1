"""Peer values in the agent's log: one line, and one field, whatever the peer sends."""
from __future__ import annotations

import pytest

from condor_docker.core.logsafe import clean, field


@pytest.mark.parametrize("value, shown", [
    ("HTCJob_1_0_slot1_1_u1001", "HTCJob_1_0_slot1_1_u1001"),
    ("status uid=0 pid=1 job=1.0 result=ok", '"status uid=0 pid=1 job=1.0 result=ok"'),
    ("x=y", '"x=y"'),
    ('a"b', '"a\\"b"'),
    ("ping\nINFO condor_docker.agent: op=launch uid=0", '"ping\\x0aINFO condor_docker.agent: op=launch uid=0"'),
    ("", '""'),
])
def test_a_peer_value_stays_inside_its_field(value, shown):
    """An independent review forged `uid=0 result=ok` inside a line with spaces and `=` (no newline needed)."""
    assert field(value) == shown
    assert "\n" not in field(value) and "\n" not in clean(value)
