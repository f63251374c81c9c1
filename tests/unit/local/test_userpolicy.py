"""Job policy as the shadow and schedd evaluate it, on ads made by submitfile (as condor_submit would)."""
from __future__ import annotations

import textwrap

import classad2

from condor_docker.local import submitfile, userpolicy


def ad_of(tmp_path, commands: str) -> classad2.ClassAd:
    path = tmp_path / "job.sub"
    path.write_text("universe = docker\ndocker_image = r/i:1\n" + textwrap.dedent(commands) + "queue\n")
    return submitfile.load_procs(str(path), 1)[0].ad


def exit_with(ad, code=None, signal=None, started=1000.0, now=1010.0):
    userpolicy.mark_running(ad, started)
    userpolicy.record_exit(ad, code, signal, started, now)
    return userpolicy.on_exit(ad)


def test_no_policy_means_done(tmp_path):
    assert exit_with(ad_of(tmp_path, ""), code=7).action == "done"


def test_max_retries_requeues_until_success_or_the_limit(tmp_path):
    ad = ad_of(tmp_path, "max_retries = 2\n")
    assert ad["JobMaxRetries"] == 2
    assert [exit_with(ad, code=1).action for _ in range(3)] == ["requeue", "requeue", "done"]
    assert ad["NumJobCompletions"] == 3 and ad["NumJobStarts"] == 3
    assert exit_with(ad_of(tmp_path, "max_retries = 5\n"), code=0).action == "done"


def test_success_exit_code_and_on_exit_remove(tmp_path):
    ad = ad_of(tmp_path, "max_retries = 3\nsuccess_exit_code = 4\n")
    assert exit_with(ad, code=0).action == "requeue" and exit_with(ad, code=4).action == "done"
    ad = ad_of(tmp_path, "on_exit_remove = ExitBySignal == false && ExitCode == 0\n")
    decision = exit_with(ad, signal=9)
    assert decision.action == "requeue" and "OnExitRemove" in decision.reason and "FALSE" in decision.reason


def test_on_exit_hold_with_reason_and_subcode(tmp_path):
    ad = ad_of(tmp_path, 'on_exit_hold = ExitCode == 3\non_exit_hold_reason = "three is bad"\n'
                         "on_exit_hold_subcode = 42\n")
    decision = exit_with(ad, code=3)
    assert (decision.action, decision.reason, decision.code, decision.subcode) == ("hold", "three is bad", 3, 42)
    assert exit_with(ad, code=0).action == "done"
    plain = exit_with(ad_of(tmp_path, "on_exit_hold = ExitCode != 0\n"), code=1)
    assert plain.reason == "The job attribute OnExitHold expression 'ExitCode != 0' evaluated to TRUE"


def test_periodic_remove_and_hold_see_the_wall_clock(tmp_path):
    ad = ad_of(tmp_path, "periodic_remove = RemoteWallClockTime > 5\n")
    userpolicy.mark_running(ad, 1000.0)
    userpolicy.update_wall_clock(ad, 1000.0, 1003.0)
    assert userpolicy.periodic(ad) is None
    userpolicy.update_wall_clock(ad, 1000.0, 1006.0)
    assert userpolicy.periodic(ad).action == "remove"
    ad = ad_of(tmp_path, "periodic_hold = JobStatus == 2 && NumJobStarts >= 1\nperiodic_hold_subcode = 7\n")
    assert userpolicy.periodic(ad) is None            # idle, never started
    userpolicy.mark_running(ad, 1000.0)
    held = userpolicy.periodic(ad)
    assert held.action == "hold" and held.code == 3 and held.subcode == 7


def test_policy_that_does_not_evaluate_holds_with_code_5_as_htcondor_does(tmp_path):
    ad = ad_of(tmp_path, "on_exit_hold = NoSuchAttr > 3\n")
    decision = exit_with(ad, code=1)
    assert (decision.action, decision.code) == ("hold", 5)
    assert decision.reason == "The job attribute OnExitHold expression 'NoSuchAttr > 3' evaluated to UNDEFINED"
    held = userpolicy.periodic(ad_of(tmp_path, "periodic_remove = \"a string\"\n"))
    assert (held.action, held.code) == ("hold", 5)


def test_literal_undefined_and_numbers(tmp_path):
    assert userpolicy.periodic(ad_of(tmp_path, "periodic_remove = undefined\n")) is None
    assert userpolicy.periodic(ad_of(tmp_path, "periodic_remove = 1\n")).action == "remove"
    assert userpolicy.periodic(ad_of(tmp_path, "periodic_hold = 0\n")) is None


def test_periodic_expressions_are_checked_at_exit_first(tmp_path):
    ad = ad_of(tmp_path, "periodic_remove = ExitCode =?= 9\non_exit_hold = true\n")
    assert exit_with(ad, code=9).action == "remove"
