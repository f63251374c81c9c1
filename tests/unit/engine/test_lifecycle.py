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


def test_a_slow_disk_walk_spaces_out_the_next_ones(monkeypatch):
    """A million-file scratch dir must not keep the agent walking: the next walk waits
    DISK_WALK_BUDGET times as long as the last one took (never less than the period)."""
    import threading

    from condor_docker.engine import lifecycle
    clock = iter([0.0, 0.1, 100.0, 110.0, 200.0, 200.5])      # walks of 0.1 s, 10 s, 0.5 s
    monkeypatch.setattr(lifecycle.time, "monotonic", lambda: next(clock))
    waits = []

    class Finished:
        def wait(self, delay):
            waits.append(delay)
            return len(waits) > 3

        def is_set(self):
            return False

    run = object.__new__(lifecycle.ContainerRun)
    run.disk_check_period, run.disk_limit_kb, run._over_disk = 30.0, None, None
    run._finished, run._lock, run._usage = Finished(), threading.Lock(), lifecycle.Usage()
    run.spec = type("Spec", (), {"name": "HTCJob_1_0_slot1_1"})()
    run._disk = lambda: (10, 10, 0, None)
    run._watch_disk()
    assert waits == [30.0, 30.0, 10.0 * lifecycle.DISK_WALK_BUDGET, 30.0]
