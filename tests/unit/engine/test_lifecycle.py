"""Exit by signal and the exit result's usage (no engine)."""
from __future__ import annotations

import signal

import pytest

from condor_docker.engine import usage
from condor_docker.engine.lifecycle import ExitResult, signal_of_exit_code


# -- exit by signal -----------------------------------------------------------------------
@pytest.mark.parametrize("code, signum", [(0, None), (1, None), (128, None), (129, 1), (137, 9), (139, 11),
                                          (143, 15), (128 + signal.NSIG - 1, signal.NSIG - 1),
                                          (128 + signal.NSIG, None), (255, None)])
def test_exit_code_above_128_is_a_signal(code, signum):
    assert signal_of_exit_code(code) == signum


def test_exit_result_keeps_usage_and_tolerates_unknown_usage_fields():
    result = ExitResult(None, 11, usage=usage.Usage(1.5, 0.25, 64, 10, 20, 300))
    again = ExitResult.from_dict(result.to_dict() | {"usage": result.to_dict()["usage"] | {"future": 1}})
    assert again.signal == 11 and again.usage == result.usage
