"""Our submit file -> job ad mapping against the real condor_submit (`-dry-run`, no schedd needed).

Uses the HTCondor 25.0 tarball in shared/htcondor (unpacked into a temp dir);
skips, saying why, where it is absent or its binaries cannot run here.
"""
from __future__ import annotations

import glob
import os
import subprocess
import tarfile
import textwrap

import classad2
import pytest
from testpaths import HTCONDOR_TARBALLS

from condor_docker.local import submitfile

TARBALLS = HTCONDOR_TARBALLS


@pytest.fixture(scope="module")
def condor_submit(tmp_path_factory):
    if not TARBALLS:
        pytest.skip("no HTCondor tarball in shared/htcondor")
    root = tmp_path_factory.mktemp("htcondor")
    with tarfile.open(TARBALLS[0]) as tar:
        members = [m for m in tar.getmembers() if "/bin/condor_submit" in m.name or "/lib/" in m.name]
        tar.extractall(root, members=members)   # our own shared tarball (members chosen above)
    [binary] = glob.glob(str(root / "*" / "bin" / "condor_submit"))
    config = root / "condor_config"
    (root / "local").mkdir()
    config.write_text(f"LOCAL_DIR = {root}/local\nLOG = $(LOCAL_DIR)\nSPOOL = $(LOCAL_DIR)\n"
                      "CONDOR_HOST = 127.0.0.1\nCOLLECTOR_HOST = 127.0.0.1:1\nUID_DOMAIN = localhost\n"
                      "FILESYSTEM_DOMAIN = localhost\n")

    def run(path: str) -> classad2.ClassAd:
        done = subprocess.run([binary, "-dry-run", "-", path], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, CONDOR_CONFIG=str(config)), cwd=os.path.dirname(path))
        if done.returncode != 0 or "=" not in done.stdout:
            pytest.skip(f"condor_submit cannot run here: {done.stderr.strip()[:200]}")
        lines = [line for line in done.stdout.splitlines() if "=" in line and not line.startswith(("-", "Dry"))]
        return classad2.parseOne("\n".join(lines))
    return run


@pytest.mark.parametrize("commands", [
    "max_retries = 3\n",
    "max_retries = 2\nsuccess_exit_code = 4\non_exit_remove = ExitBySignal == false\n",
    "on_exit_hold = ExitCode == 3\non_exit_hold_reason = \"three\"\non_exit_hold_subcode = 5\n",
    "periodic_remove = RemoteWallClockTime > 10\nperiodic_hold = NumJobStarts > 2\n"
    "periodic_hold_reason = \"x\"\nperiodic_hold_subcode = 4\n",
    "request_disk = 1G\nrequest_gpus = 2\n",
    "getenv = PATH\nenvironment = \"A=1 B='two words'\"\n",
])
def test_policy_and_resources_match_condor_submit(tmp_path, condor_submit, commands):
    path = tmp_path / "job.sub"
    path.write_text("universe = docker\ndocker_image = 127.0.0.1:5000/x:1\nexecutable = /bin/sh\n"
                    "transfer_executable = false\n" + textwrap.dedent(commands) + "queue\n")
    theirs = condor_submit(str(path))
    ours = submitfile.load_procs(str(path), 1)[0].ad
    compared = ["OnExitRemove", "OnExitHold", "OnExitHoldReason", "OnExitHoldSubCode", "PeriodicRemove",
                "PeriodicHold", "PeriodicHoldReason", "PeriodicHoldSubCode", "JobMaxRetries", "JobSuccessExitCode",
                "RequestDisk", "RequestGPUs", "Environment"]
    defaults = {"OnExitRemove": "true", "OnExitHold": "false", "PeriodicRemove": "false", "PeriodicHold": "false",
                "RequestDisk": "DiskUsage", "Environment": ""}
    for attr in compared:
        if attr in ours:
            assert attr in theirs, f"{attr}: we write it, condor_submit does not"
            ours_text, theirs_text = str(ours.lookup(attr)), str(theirs.lookup(attr))
            assert ours_text.replace("(", "").replace(")", "") == theirs_text.replace("(", "").replace(")", ""), attr
        elif attr in theirs:   # absent here: the same as condor_submit's default
            assert str(theirs.eval(attr) if attr == "Environment" else theirs.lookup(attr)) == defaults.get(attr), attr


@pytest.mark.parametrize("command, attr", [
    ("request_memory = ifThenElse(MemoryUsage =!= undefined, MemoryUsage * 3 / 2, 96)", "RequestMemory"),
    ("request_cpus = 1 + 1", "RequestCpus"),
    ("request_disk = 2 * 1024", "RequestDisk"),
])
def test_a_request_written_as_an_expression_gives_what_condor_submits(tmp_path, condor_submit, command, attr):
    path = tmp_path / "job.sub"
    path.write_text("universe = docker\ndocker_image = 127.0.0.1:5000/x:1\nexecutable = /bin/sh\n"
                    f"transfer_executable = false\n{command}\nqueue\n")
    theirs = condor_submit(str(path)).eval(attr)   # the startd evaluates it against the new job
    ours = submitfile.load_procs(str(path), 1)[0].ad[attr]
    assert ours == theirs and isinstance(ours, int)


def test_a_request_that_is_no_size_nor_number_names_the_fix(tmp_path):
    path = tmp_path / "job.sub"
    path.write_text("universe = docker\ndocker_image = i:1\nrequest_memory = MemoryUsage * 2\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(str(path), 1)
    assert str(caught.value) == ("request_memory = 'MemoryUsage * 2' is not a size: write e.g. 128, 512M or 2G, "
                                 "or an expression that gives a positive number for a new job (here it gives undefined)")
