"""`condor_docker doctor`: the HTCondor-side checks, read from a dict instead of htcondor2.param."""
from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from condor_docker.admin import doctor, htcondor_checks
from condor_docker.core import exitcodes
from condor_docker.core.settings import default_settings


def wired(tmp_path) -> dict[str, str]:
    """The configuration config.d/50-condor_docker-execute.conf gives, with a real executable and EXECUTE."""
    executable = tmp_path / "condor_docker"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    execute = tmp_path / "execute"
    execute.mkdir(mode=0o755)
    return {"STARTER_DEFAULT_JOB_HOOK_KEYWORD": "CONDOR_DOCKER", "CONDOR_DOCKER_HOOK_PREPARE_JOB": str(executable),
            "DOCKER": "/nonexistent", "DAEMON_LIST": "MASTER, STARTD CONDOR_DOCKER_AGENT",
            "STARTD_CRON_JOBLIST": "CONDOR_DOCKER", "STARTD_CRON_CONDOR_DOCKER_EXECUTABLE": str(executable),
            "STARTD_CRON_CONDOR_DOCKER_ARGS": "advertise", "EXECUTE": str(execute)}


def test_a_wired_execute_point_passes_every_htcondor_check(tmp_path):
    config = wired(tmp_path)
    for name, probe in htcondor_checks.CHECKS:
        if name == "HTCondor EXECUTE":
            assert probe(config.get, condor_uid=os.stat(config["EXECUTE"]).st_uid)
        else:
            assert probe(config.get), name


@pytest.mark.parametrize("knob, value, words", [
    ("STARTER_DEFAULT_JOB_HOOK_KEYWORD", None, "the starter will not call our hooks"),
    ("CONDOR_DOCKER_HOOK_PREPARE_JOB", "/nonexistent/bin/condor_docker", "not an executable file"),
    ("DOCKER", sys.executable, "set DOCKER = /nonexistent"),
    ("DAEMON_LIST", "MASTER STARTD", "condor_master never starts the agent"),
    ("STARTD_CRON_JOBLIST", "OTHER", "never advertises HasDocker"),
])
def test_each_missing_piece_of_wiring_is_named_with_its_fix(tmp_path, knob, value, words):
    config = {**wired(tmp_path), knob: value}
    problems = []
    for name, probe in htcondor_checks.CHECKS:
        if name == "HTCondor EXECUTE":
            continue
        try:
            probe(config.get)
        except htcondor_checks.ConfigProblem as err:
            problems.append(str(err))
    assert len(problems) == 1 and problems[0].startswith(knob) and words in problems[0]


def test_execute_must_be_owned_by_root_or_condor_and_writable_by_its_owner_alone(tmp_path):
    config = wired(tmp_path)
    execute = config["EXECUTE"]
    owner = os.stat(execute).st_uid
    assert "mode 0755" in htcondor_checks.execute_owned_right(config.get, condor_uid=owner)
    os.chmod(execute, 0o1777)
    with pytest.raises(htcondor_checks.ConfigProblem, match="writable by others.*chmod 0755"):
        htcondor_checks.execute_owned_right(config.get, condor_uid=owner)
    os.chmod(execute, 0o755)
    fake = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, owner + 12345, 0, 0, 0, 0, 0))
    with pytest.raises(htcondor_checks.ConfigProblem, match=f"owned by uid {owner + 12345}"):
        htcondor_checks.execute_owned_right(config.get, stat_of=lambda _path: fake, condor_uid=owner)
    with pytest.raises(htcondor_checks.ConfigProblem, match="No such file"):
        htcondor_checks.execute_owned_right({"EXECUTE": str(tmp_path / "missing")}.get, condor_uid=owner)


def test_doctor_parses_docker_extra_arguments_and_exits_1_not_its_fail_count(tmp_path, capsys, monkeypatch):
    """A refused DOCKER_EXTRA_ARGUMENTS used to be reported `ok`, and the exit status was the FAIL count."""
    monkeypatch.setattr(doctor, "_htcondor_lookup", lambda: wired(tmp_path).get)
    code = doctor.main_doctor(["--json", "--set", "DOCKER_EXTRA_ARGUMENTS=--privileged",
                               "--set", f"CONDOR_DOCKER_ENGINE_URL=unix://{tmp_path}/dead.sock",
                               "--set", f"CONDOR_DOCKER_AGENT_SOCKET={tmp_path}/dead-agent.sock"])
    report = json.loads(capsys.readouterr().out)
    failed = {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert code == exitcodes.HELD == 1 and report["ok"] is False and len(failed) > 1
    assert "'--privileged' is not supported" in failed["DOCKER_EXTRA_ARGUMENTS"]
    assert {"engine", "agent"} <= set(failed)


def test_every_check_has_a_result_even_when_all_is_well(tmp_path):
    settings = default_settings(DOCKER_EXTRA_ARGUMENTS="--ulimit nofile=1024:1024")
    results = doctor.run_checks(settings, wired(tmp_path).get)
    extra = next(r for r in results if r.check == "DOCKER_EXTRA_ARGUMENTS")
    assert extra.ok and extra.line().startswith("ok    DOCKER_EXTRA_ARGUMENTS: ")
