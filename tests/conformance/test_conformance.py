"""Every case of the corpus, in HTCondor's own docker universe and in condor_docker, compared.

One test per case (and HTCondor install): the outcomes come from the session's
`outcomes` fixture, which ran the whole corpus in both pools at once
(conftest.py). Holds are compared through holdcodes.HOLD_TABLE only.
"""
from __future__ import annotations

import pytest
from holdcodes import hold_events, same_hold


def differences(case, native, ours) -> list[str]:
    """What the user would see differently, field by field (the case's `compare` fields)."""
    found = []
    for name in case.compare:
        if name == "hold":
            if (native.hold_code, ours.hold_code) != (None, None) and \
                    not same_hold((native.hold_code, native.hold_subcode), (ours.hold_code, ours.hold_subcode)):
                found.append(f"hold: native {native.hold_code}/{native.hold_subcode} {native.hold_reason!r}, "
                             f"ours {ours.hold_code}/{ours.hold_subcode} {ours.hold_reason!r}")
            continue
        mine, theirs = getattr(ours, name), getattr(native, name)
        if name == "events" and "held" in (native.state, ours.state):
            mine, theirs = hold_events(mine), hold_events(theirs)
        if mine != theirs:
            found.append(f"{name}: native {_short(theirs)}, ours {_short(mine)}")
    for key in case.compare_notes:
        if native.notes.get(key) != ours.notes.get(key):
            found.append(f"{key}: native {native.notes.get(key)!r}, ours {ours.notes.get(key)!r}")
    return found


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 400 else text[:400] + "..."


def test_case(case, outcomes, request):
    native, ours = outcomes[("native", case.name)], outcomes[("ours", case.name)]
    if case.xfail:
        request.applymarker(pytest.mark.xfail(reason=case.xfail, strict=True))
    assert ours.state != "error", f"the case itself failed in our pool:\n{ours.stderr.decode()}"
    assert native.state != "error" or case.native_bug, f"the case itself failed natively:\n{native.stderr.decode()}"
    report = f"\nnative: {native.summary()}\nours:   {ours.summary()}"
    if case.ours_better or case.native_bug:
        assert case.check_ours is not None, "a case that differs on purpose must check our behaviour"
    found = differences(case, native, ours)
    assert not found, "\n".join(found) + report
    if case.check_ours is not None:
        case.check_ours(ours)
    if case.check_native is not None:     # the recorded native behaviour is still what it was
        case.check_native(native)


def test_hold_table_is_in_the_migration_doc():
    """docs/MIGRATION-FROM-NATIVE.md shows holdcodes.HOLD_TABLE exactly (no pool needed)."""
    import os

    from holdcodes import render_markdown

    doc = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "MIGRATION-FROM-NATIVE.md")
    with open(doc) as stream:
        assert render_markdown() in stream.read()
