"""Submit files -> job ads for the local runner."""
from __future__ import annotations

import textwrap

import pytest

from condor_docker.core import ads
from condor_docker.core.arguments import parse_env_v2
from condor_docker.local import submitfile


@pytest.mark.parametrize("text,mb", [("64", 64), ("64M", 64), ("1G", 1024), ("512 MB", 512), ("2048K", 2)])
def test_memory_sizes(text, mb):
    assert submitfile.parse_memory_mb(text) == mb


def write(tmp_path, text):
    path = tmp_path / "job.sub"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_queue_items_and_macros(tmp_path):
    path = write(tmp_path, """\
        universe = docker
        docker_image = 127.0.0.1:5000/img:1
        executable = run.sh
        arguments = "$(Process) '$(word) x'"
        output = out.$(Cluster).$(Process)
        environment = "A=1 B='two words'"
        request_memory = 1G
        queue word in (alpha, beta)
        """)
    procs = submitfile.load_procs(path, 9)
    assert [ads.get_int(p.ad, "ProcId") for p in procs] == [0, 1]
    second = procs[1].ad
    assert ads.get_str(second, "Arguments") == "1 beta' 'x"
    assert ads.get_str(second, "Out") == str(tmp_path / "out.9.1")
    assert ads.get_str(second, "Cmd") == str(tmp_path / "run.sh") and ads.get_bool(second, "TransferExecutable")
    assert ads.get_int(second, "RequestMemory") == 1024
    assert parse_env_v2(ads.get_str(second, "Environment")) == {"A": "1", "B": "two words"}
    assert ads.get_bool(second, "WantDocker") and ads.get_int(second, "JobUniverse") == 5


def test_queue_count(tmp_path):
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nqueue 3\n")
    assert len(submitfile.load_procs(path, 1)) == 3


def test_not_docker_universe_is_refused(tmp_path):
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(write(tmp_path, "executable = /bin/true\nqueue\n"), 1)
    assert "universe = docker" in str(caught.value)


def test_missing_image_is_refused(tmp_path):
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(write(tmp_path, "universe = docker\nqueue\n"), 1)
    assert "docker_image" in str(caught.value)


def test_custom_attributes(tmp_path):
    path = write(tmp_path, 'universe = docker\ndocker_image = i:1\n+ProjectName = "lab"\nqueue\n')
    assert ads.get_str(submitfile.load_procs(path, 1)[0].ad, "ProjectName") == "lab"


# -- every submit command honoured or refused -------------------------------------

def test_refused_command_names_itself_and_why(tmp_path):
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\nperiodic_release = true\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(path, 1)
    assert str(caught.value).startswith("periodic_release: refused by condor_docker run: held jobs stay held")


def test_near_miss_warns_with_the_command_it_probably_meant(tmp_path):
    path = write(tmp_path, "universe = docker\ndocker_image = i:1\ndocker_netwrk_type = none\nmy_macro = 3\nqueue\n")
    warnings: list[str] = []
    submitfile.load_procs(path, 1, warnings)
    assert warnings == ["warning: docker_netwrk_type is not a submit command (taken as a macro); "
                        "did you mean docker_network_type?"]


def test_every_row_of_the_users_submit_table_is_a_known_command():
    import os
    import re
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "USERS.md")).read()
    table = readme.split("## Submit commands", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_0-9]+)`", table, re.M))
    known = submitfile.HONOURED | set(submitfile.REFUSED)
    assert rows and rows <= known
    assert known - {"queue"} <= rows, f"commands missing from the submit-command table in docs/USERS.md: {sorted(known - rows)}"


def test_policy_getenv_remaps_and_resources_become_attributes(tmp_path, monkeypatch):
    monkeypatch.setenv("CD_TEST_VAR", "from submitter")
    monkeypatch.setenv("CD_OTHER", "x")
    path = write(tmp_path, """\
        universe = docker
        docker_image = i:1
        getenv = CD_TEST_*
        environment = "A=1"
        transfer_output_remaps = "out.txt = results/out.1.txt; b = c"
        request_disk = 2G
        request_gpus = 1
        requirements = Memory >= 64
        max_retries = 2
        on_exit_hold = ExitCode == 3
        queue
        """)
    proc = submitfile.load_procs(path, 1)[0]
    assert parse_env_v2(ads.get_str(proc.ad, "Environment")) == {"A": "1", "CD_TEST_VAR": "from submitter"}
    assert proc.output_remaps == (("out.txt", "results/out.1.txt"), ("b", "c"))
    assert proc.ad["RequestDisk"] == 2 * 1024 * 1024 and proc.ad["RequestGPUs"] == 1
    assert str(proc.ad.lookup("OnExitRemove")) == "NumJobCompletions > JobMaxRetries || ExitCode is 0"
    assert str(proc.ad.lookup("Requirements")) == "Memory >= 64"


def test_a_binary_file_and_a_huge_queue_are_one_line_refusals(tmp_path):
    """A binary file used to print only the codec's words; `queue 99999999` built ads for minutes."""
    garbage = tmp_path / "garbage.sub"
    garbage.write_bytes(b"univ\x90\xff\x00")
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(str(garbage), 1)
    assert str(caught.value) == (f"cannot read the submit file {garbage}: it is not text (byte 0x90 at offset 4 "
                                 "is not UTF-8); give a submit description file")
    huge = tmp_path / "huge.sub"
    huge.write_text("universe = docker\ndocker_image = i:1\nqueue 99999999\n")
    with pytest.raises(submitfile.SubmitError, match="at most 10000 per submit file"):
        submitfile.load_procs(str(huge), 1)


EMPTY_IS_UNSET = ["arguments", "output", "error", "log", "input", "request_memory", "request_cpus", "request_disk",
                  "request_gpus", "executable", "universe", "environment", "getenv", "requirements", "rank",
                  "initialdir", "batch_name", "max_retries", "success_exit_code", "on_exit_remove",
                  "transfer_input_files", "transfer_output_files", "transfer_executable", "notification",
                  "docker_network_type"]


@pytest.mark.parametrize("command", EMPTY_IS_UNSET)
def test_an_empty_command_is_unset_as_for_condor_submit(tmp_path, command):
    """`arguments =` was a KeyError from htcondor2's expand() (exit 70); condor_submit -dry-run takes it as unset."""
    universe = "" if command == "universe" else "universe = docker\n"
    base = write(tmp_path, f"{universe}docker_image = i:1\nqueue\n")
    (tmp_path / "empty").mkdir()
    empty = write(tmp_path / "empty", f"{universe}docker_image = i:1\n{command} =\nalso = $(nothing)\n"
                                      f"queue\n")
    if command == "universe":   # unset is vanilla, as for condor_submit
        with pytest.raises(submitfile.SubmitError, match="universe = vanilla: condor_docker runs only universe"):
            submitfile.load_procs(empty, 1)
        return
    ours, unset = submitfile.load_procs(empty, 1)[0], submitfile.load_procs(base, 1)[0]
    varying = {"QDate", "EnteredCurrentStatus", "Iwd"}
    assert {k: str(ours.ad.lookup(k)) for k in ours.ad if k not in varying} == \
           {k: str(unset.ad.lookup(k)) for k in unset.ad if k not in varying}
    assert (ours.transfer_input, ours.transfer_output) == (unset.transfer_input, unset.transfer_output)


def test_an_empty_docker_image_is_no_docker_image(tmp_path):
    with pytest.raises(submitfile.SubmitError, match="no docker_image: add docker_image = "):
        submitfile.load_procs(write(tmp_path, "universe = docker\ndocker_image =\nqueue\n"), 1)


def test_an_empty_custom_attribute_is_undefined_as_for_condor_submit(tmp_path):
    ad = submitfile.load_procs(write(tmp_path, "universe = docker\ndocker_image = i:1\n+MyAttr =\nqueue\n"), 1)[0].ad
    assert str(ad.lookup("MyAttr")) == "undefined"


@pytest.mark.parametrize("queue", ["x in ()", "2 x in ()", "x from {empty}", "x matching {tmp}/nothing-*.none"])
def test_an_empty_item_list_queues_no_job_as_for_condor_submit(tmp_path, queue):
    """`rows or [{}]` ran one job; condor_submit -dry-run: "only empty queue commands -- no jobs queued"."""
    (tmp_path / "empty.txt").write_text("")
    statement = queue.format(empty=tmp_path / "empty.txt", tmp=tmp_path)
    assert submitfile.load_procs(write(tmp_path, f"universe = docker\ndocker_image = i:1\nqueue {statement}\n"),
                                 1) == []


@pytest.mark.parametrize("queue, jobs", [("", 1), ("2", 2), ("x in (a)", 1), ("2 x in (a, b)", 4)])
def test_a_queue_statement_with_items_or_a_count_still_queues(tmp_path, queue, jobs):
    path = write(tmp_path, f"universe = docker\ndocker_image = i:1\nqueue {queue}\n")
    assert len(submitfile.load_procs(path, 1)) == jobs


@pytest.mark.parametrize("text, mb", [("0", 0), ("5.5", 6), ("0.5", 1), ("1500K", 2), ("9223372036854775807", 2 ** 63 - 1)])
def test_a_size_is_exact_and_rounded_up_as_by_condor_submit(text, mb):
    """`0` was shown as 1 MB and `5.5` as 5 MB (float, truncated, max 1); condor_submit -dry-run writes 0 and 6."""
    assert submitfile.parse_memory_mb(text) == mb


@pytest.mark.parametrize("expression, gives", [
    ("ifThenElse(MemoryUsage =!= undefined, MemoryUsage, undefined)", "(here it gives undefined)"),
    ("1/0", "(here it gives error)"),
    ("1 > 0", "(here it gives true)"),
    ('"big"', '(here it gives "big")'),
    ("{1, 2}", "(here it gives {1, 2})"),
    ("64 MB MB", "(this is no ClassAd expression)"),
])
def test_a_request_that_gives_no_number_says_what_it_gives_in_classad_words(tmp_path, expression, gives):
    """An expression that did not parse showed "(here it gives None)", a Python word."""
    path = write(tmp_path, f"universe = docker\ndocker_image = i:1\nrequest_memory = {expression}\nqueue\n")
    with pytest.raises(submitfile.SubmitError) as caught:
        submitfile.load_procs(path, 1)
    assert str(caught.value).endswith(f"or an expression that gives a positive number for a new job {gives}")
    assert "None" not in str(caught.value) and "True" not in str(caught.value)
