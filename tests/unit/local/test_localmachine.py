"""The local runner's machine: requirements, disk and GPUs checked against this machine."""
from __future__ import annotations

import textwrap

import pytest

from condor_docker.local import submitfile


def write(tmp_path, text):
    path = tmp_path / "job.sub"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_requirements_disk_and_gpus_are_checked_against_this_machine(tmp_path):
    from condor_docker.local import localmachine as runner
    machine = runner.local_machine_ad(("0",), str(tmp_path))
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nrequirements = OpSys == \"WINDOWS\"\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        runner.check_fits(submitfile.load_procs(path, 1)[0], machine)
    assert "does not match this machine" in str(caught.value) and "OpSys" in str(caught.value)
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nrequest_gpus = 2\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        runner.check_fits(submitfile.load_procs(path, 1)[0], machine)
    assert "request_gpus = 2: this machine has 1 GPU(s)" in str(caught.value)
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nrequest_gpus = 1\nrequest_disk = 1\n"
                           "requirements = HasDocker && Cpus >= 1 && GPUs >= 1\nqueue\n")
    runner.check_fits(submitfile.load_procs(path, 1)[0], machine)   # fits: no error


def test_a_memory_request_over_this_machine_is_refused_not_run(tmp_path):
    """request_memory = 10T used to run, and the event log showed 10,485,760 MB allocated."""
    from condor_docker.local import localmachine
    machine = localmachine.local_machine_ad((), str(tmp_path))
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nrequest_memory = 10T\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        localmachine.check_fits(submitfile.load_procs(path, 1)[0], machine)
    assert str(caught.value).startswith("request_memory = 10485760 MB: this machine has ")
    assert "lower request_memory" in str(caught.value)
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nrequest_memory = 64M\nqueue\n")
    localmachine.check_fits(submitfile.load_procs(path, 1)[0], machine)   # fits: no error


def test_more_cpus_than_this_machine_has_is_refused(tmp_path):
    from condor_docker.local import localmachine
    machine = localmachine.local_machine_ad((), str(tmp_path))
    path = write(tmp_path, f"universe = docker\ndocker_image = i:1\nrequest_cpus = {machine['Cpus'] + 1}\nqueue\n")
    with pytest.raises(submitfile.SubmitError, match=r"request_cpus = \d+: this machine has \d+ CPUs"):
        localmachine.check_fits(submitfile.load_procs(path, 1)[0], machine)
