"""The local runner's own rules that need no engine: messages and the exit status."""
from __future__ import annotations

import pytest

from condor_docker.core import exitcodes
from condor_docker.core.failures import Code, Failure
from condor_docker.local import runner, submitfile
from condor_docker.local.eventlog import JobId

NOT_FOUND = Failure(Code.EXECUTABLE_NOT_FOUND, "Cannot run ./cat in image i:1: No such file or directory")


def proc_of(tmp_path, executable: str, transfer: str | None = None):
    lines = f"universe = docker\ndocker_image = i:1\nexecutable = {executable}\n"
    lines += f"transfer_executable = {transfer}\n" if transfer else ""
    (tmp_path / "job.sub").write_text(lines + "queue\n")
    return submitfile.load_procs(str(tmp_path / "job.sub"), 1)[0]


def test_a_transferred_absolute_executable_that_cannot_run_names_the_rule(tmp_path):
    """HTCondor's manual example `/bin/cat` used to fail as `Cannot run ./cat` and no more."""
    explained = runner.explain_transferred_executable(NOT_FOUND, proc_of(tmp_path, "/bin/cat"))
    assert explained.code is Code.EXECUTABLE_NOT_FOUND and explained.reason.startswith(NOT_FOUND.reason)
    assert "executable = /bin/cat was transferred from this machine" in explained.reason
    assert explained.reason.endswith("write transfer_executable = false)")


@pytest.mark.parametrize("executable, transfer", [("/bin/cat", "false"), ("script.sh", None)])
def test_no_hint_where_the_rule_did_not_apply(tmp_path, executable, transfer):
    proc = proc_of(tmp_path, executable, transfer)
    assert runner.explain_transferred_executable(NOT_FOUND, proc) is NOT_FOUND
    other = Failure(Code.OVER_MEMORY, "over memory")
    assert runner.explain_transferred_executable(other, proc_of(tmp_path, "/bin/cat")) is other


def test_exit_status_is_0_only_when_every_job_ran_to_its_end():
    job = JobId(1, 0)
    done = runner.Outcome(job, None, None)
    held = runner.Outcome(job, None, NOT_FOUND)
    broken = runner.Outcome(job, None, None, removed="bug", error="bug")
    assert runner.exit_code([done], interrupted=False) == exitcodes.OK
    assert runner.exit_code([done, held], interrupted=False) == exitcodes.HELD
    assert runner.exit_code([done], interrupted=True) == exitcodes.INTERRUPTED
    assert runner.exit_code([held, broken], interrupted=True) == exitcodes.INTERNAL
    assert runner.exit_code([done, held], interrupted=True, lost_record=True) == exitcodes.CANTCREAT


def test_a_bug_in_one_job_still_writes_a_terminal_event(tmp_path, capsys):
    from condor_docker.local.eventlog import EventLog
    log = EventLog(str(tmp_path / "job.log"))
    try:
        raise KeyError("surprise")
    except KeyError as err:
        outcome = runner._broken(JobId(7, 0), log, err)
    assert outcome.error and outcome.describe().startswith("job 7.0: removed: condor_docker run: internal error: ")
    assert "Job was aborted" in (tmp_path / "job.log").read_text()
    assert capsys.readouterr().err.count("\n") == 1


def test_run_uses_the_engine_the_users_docker_cli_would():
    from condor_docker.local.runner import RUNNER_DEFAULTS, runner_defaults
    assert runner_defaults({}) == RUNNER_DEFAULTS
    assert runner_defaults({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})["CONDOR_DOCKER_ENGINE_URL"] == \
        "unix:///run/user/1000/docker.sock"
