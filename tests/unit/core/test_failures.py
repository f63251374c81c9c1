"""Failures: kind kept when wrapped, one-line reasons, hold codes in HTCondor's hook status ranges."""
from __future__ import annotations

from condor_docker.core.failures import Code, Failure, Kind


def test_failure_keeps_kind_when_wrapped_and_is_one_line():
    failure = Failure(Code.REGISTRY_UNREACHABLE, "line one\nline   two")
    assert failure.reason == "line one line two"
    wrapped = failure.with_context("job 1.0")
    assert wrapped.kind is Kind.REQUEUE and wrapped.reason == "job 1.0: line one line two"
    assert Failure.from_dict(wrapped.to_dict()).code is Code.REGISTRY_UNREACHABLE


def test_hold_codes_fit_htcondors_hook_status_ranges():
    for code in Code:
        assert (1 <= code.value <= 299) == (code.kind is Kind.HOLD)
        assert (code.value >= 300) == (code.kind is Kind.REQUEUE)
