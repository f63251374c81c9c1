"""Knobs, and submit files -> job ads for the local runner."""
from __future__ import annotations

import textwrap

import pytest

from condor_docker import ads, settings, submitfile
from condor_docker.arguments import parse_env_v2


def test_defaults_and_overrides():
    s = settings.default_settings(CONDOR_DOCKER_PULL_TIMEOUT="30s", DOCKER_NETWORKS="a, b")
    assert s.pull_timeout == 30 and s.networks == ("a", "b") and s.drop_all_capabilities is True


@pytest.mark.parametrize("knob,value,words", [
    ("CONDOR_DOCKER_PULL_TIMEOUT", "soon", "not a number of seconds"),
    ("CONDOR_DOCKER_PULL_TIMEOUT", "0", "below its minimum"),
    ("DOCKER_DROP_ALL_CAPABILITIES", "maybe", "not a boolean"),
    ("CONDOR_DOCKER_DEFAULT_NETWORK", "labnet", "DOCKER_NETWORKS"),
    ("DOCKER_VOLUMES", "DATA", "DOCKER_VOLUME_DIR_DATA is not set"),
])
def test_bad_knobs_name_the_knob_and_the_fix(knob, value, words):
    with pytest.raises(settings.SettingsError) as caught:
        settings.default_settings(**{knob: value})
    assert words in str(caught.value)


def test_every_knob_has_a_field_and_a_doc():
    s = settings.default_settings()
    for knob in settings.KNOBS:
        assert hasattr(s, settings.field_name(knob.name)) and knob.doc


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
