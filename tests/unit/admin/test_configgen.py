"""The committed config.d files are exactly the generator's output, and cover every knob.

HTCondor's own config reader (htcondor2.param after reloading with the file)
checks that the execute file parses and wires what the contract needs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from condor_docker.core import configfiles
from condor_docker.core.settings import KNOBS

REPO = Path(__file__).resolve().parents[3]
CONFIG_D = REPO / "config.d"


@pytest.mark.parametrize("which", sorted(configfiles.GENERATORS))
def test_committed_file_equals_generator_output(which):
    generate, name = configfiles.GENERATORS[which]
    committed = (CONFIG_D / name).read_text()
    assert committed == generate(), (
        f"config.d/{name} drifted from the knob table: run "
        f"`condor_docker config {which} > config.d/{name}`")


def test_every_knob_appears_with_its_default_and_doc():
    text = configfiles.execute_point_config()
    for knob in KNOBS:
        assert re.search(rf"^{knob.name} =(?: {re.escape(knob.configured)})?$" if not knob.configured else
                         rf"^{knob.name} = {re.escape(knob.configured)}$", text, re.M), knob.name
        first_words = " ".join(knob.doc.split()[:3])
        assert first_words in text.replace("\n# ", " "), knob.name


def test_execute_wiring_lines():
    text = configfiles.execute_point_config()
    for line in (
        "STARTD_CRON_JOBLIST = $(STARTD_CRON_JOBLIST) CONDOR_DOCKER",
        "STARTD_CRON_CONDOR_DOCKER_ARGS = advertise --socket $(CONDOR_DOCKER_AGENT_SOCKET)",
        "STARTD_CRON_CONDOR_DOCKER_MODE = Periodic",
        "STARTD_CRON_CONDOR_DOCKER_PERIOD = 60s",
        "STARTER_DEFAULT_JOB_HOOK_KEYWORD = CONDOR_DOCKER",
        "DAEMON_LIST = $(DAEMON_LIST) CONDOR_DOCKER_AGENT",
        "CONDOR_DOCKER_AGENT_ARGS = agent",
        "CONDOR_DOCKER_AGENT_LOG = $(LOG)/CondorDockerLog",
        "DOCKER = /nonexistent",
    ):
        assert line in text.splitlines(), line


def test_access_point_transform_keeps_the_users_on_exit_hold():
    text = configfiles.access_point_config()
    assert "JOB_TRANSFORM_NAMES = $(JOB_TRANSFORM_NAMES) CondorDocker" in text
    assert ("SET OnExitHold (ChirpCondorDockerHoldReason isnt undefined) || ($(MY.OnExitHold:false))"
            in text)
    assert ("SET OnExitHoldReason ifThenElse(ChirpCondorDockerHoldReason isnt undefined, "
            "ChirpCondorDockerHoldReason, $(MY.OnExitHoldReason:undefined))") in text
    assert ("SET OnExitHoldSubCode ifThenElse(ChirpCondorDockerHoldReason isnt undefined, "
            "ChirpCondorDockerHoldSubCode, $(MY.OnExitHoldSubCode:0))") in text
    assert "REQUIREMENTS WantDocker =?= true || WantContainer =?= true" in text


def _param_with(config_file: Path, names: list[str]) -> dict:
    """Values HTCondor's own config reader sees with only this file as local config."""
    code = ("import json, sys, htcondor2; print(json.dumps({'VERSION': htcondor2.version().split()[1], "
            "**{n: htcondor2.param.get(n) for n in sys.argv[1:]}}))")
    env = {**os.environ, "CONDOR_CONFIG": str(config_file),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_htcondor_reads_the_execute_file(tmp_path):
    (tmp_path / "condor_config").write_text(
        f"LOG = /var/log/condor\nDAEMON_LIST = MASTER STARTD\nSTARTD_CRON_JOBLIST =\n"
        f"include : {CONFIG_D / '50-condor_docker-execute.conf'}\n")
    values = _param_with(tmp_path / "condor_config", [
        "DAEMON_LIST", "CONDOR_DOCKER_AGENT", "CONDOR_DOCKER_AGENT_LOG", "STARTD_CRON_CONDOR_DOCKER_ARGS",
        "CONDOR_DOCKER_HOOK_PREPARE_JOB_ARGS", "CONDOR_DOCKER_HOOK_JOB_EXIT", "STARTD_CRON_JOBLIST"])
    assert values["DAEMON_LIST"].split()[-1] == "CONDOR_DOCKER_AGENT"
    assert values["CONDOR_DOCKER_AGENT"] == "/opt/condor_docker/venv/bin/condor_docker"
    assert values["CONDOR_DOCKER_AGENT_LOG"] == "/var/log/condor/CondorDockerLog"
    assert values["STARTD_CRON_CONDOR_DOCKER_ARGS"] == "advertise --socket /run/condor_docker/agent.sock"
    assert values["CONDOR_DOCKER_HOOK_PREPARE_JOB_ARGS"] == (
        "prepare-job --socket /run/condor_docker/agent.sock "
        "--launcher /opt/condor_docker/venv/bin/condor_docker --max-requeues 3")
    # from 25.4 on the starter exits under its own output transfer when JOB_EXIT returns (configgen)
    version = tuple(int(part) for part in values["VERSION"].split("."))
    job_exit = "/opt/condor_docker/venv/bin/condor_docker_job_exit" if version < (25, 4, 0) else None
    assert values["CONDOR_DOCKER_HOOK_JOB_EXIT"] == job_exit, values["VERSION"]
    assert values["STARTD_CRON_JOBLIST"].split() == ["CONDOR_DOCKER"]


def test_pool_dependent_knobs_reference_htcondors_own_knobs(tmp_path):
    """A site's EXECUTE/LOCAL_DIR is not ours to guess: the generated file must follow them.

    (A literal /var/lib/condor/execute held every job on a pool whose EXECUTE is
    elsewhere: "scratch dir ... is not under the execute dirs".)
    """
    text = configfiles.execute_point_config()
    assert "CONDOR_DOCKER_EXECUTE_DIRS = $(EXECUTE)" in text.splitlines()
    assert "CONDOR_DOCKER_STATE_DIR = $(LOCAL_DIR)/condor_docker" in text.splitlines()
    (tmp_path / "condor_config").write_text(
        f"LOCAL_DIR = {tmp_path}/local\nEXECUTE = {tmp_path}/elsewhere/execute\n"
        f"include : {CONFIG_D / '50-condor_docker-execute.conf'}\n")
    values = _param_with(tmp_path / "condor_config", ["CONDOR_DOCKER_EXECUTE_DIRS", "CONDOR_DOCKER_STATE_DIR"])
    assert values["CONDOR_DOCKER_EXECUTE_DIRS"] == f"{tmp_path}/elsewhere/execute"
    assert values["CONDOR_DOCKER_STATE_DIR"] == f"{tmp_path}/local/condor_docker"


def test_htcondor_reads_the_access_point_transform(tmp_path):
    (tmp_path / "condor_config").write_text(
        f"JOB_TRANSFORM_NAMES =\ninclude : {CONFIG_D / '50-condor_docker-access-point.conf'}\n")
    values = _param_with(tmp_path / "condor_config", ["JOB_TRANSFORM_NAMES", "JOB_TRANSFORM_CondorDocker"])
    assert values["JOB_TRANSFORM_NAMES"].split() == ["CondorDocker"]
    body = values["JOB_TRANSFORM_CondorDocker"]
    # param() expands macros, and MY.OnExitHold is no config knob: its default must apply.
    # (The schedd reads the transform unexpanded and expands $(MY.X) against each job.)
    assert "SET OnExitHold (ChirpCondorDockerHoldReason isnt undefined) || (false)" in body.splitlines()
    assert "$(MY.OnExitHold:false)" in configfiles.access_point_config()


def test_knob_table_lists_every_knob():
    table = configfiles.knob_table_markdown()
    for knob in KNOBS:
        assert f"| `{knob.name}` |" in table


@pytest.mark.parametrize("chirp,rss_kb,expected", [
    (182, 7500, 182),          # a short peak the procd missed: the container's exact figure
    (1, 100 * 1024, 100),      # the job set the attribute itself, lower: HTCondor's figure stays
    ('"huge"', 7500, 8),       # not a number
    (None, 7500, 8),           # no Chirp (not a docker job, or Chirp failed): HTCondor's default
])
def test_memory_usage_metric_takes_the_exact_peak_only_when_higher(chirp, rss_kb, expected):
    import classad2

    from condor_docker.core.configfiles import memory_usage_metric
    ad = classad2.ClassAd({"ResidentSetSize": rss_kb})
    if chirp is not None:
        ad["ChirpCondorDockerMemoryUsage"] = classad2.ExprTree(str(chirp))
    ad["MemoryUsage"] = classad2.ExprTree(memory_usage_metric("((ResidentSetSize+1023)/1024)"))
    assert ad.eval("MemoryUsage") == expected
