"""The agent's log rotates as HTCondor's daemon logs do (it used to grow without bound)."""
from __future__ import annotations

import logging

import pytest

from condor_docker.host import logfiles


def test_defaults_are_htcondors():
    rotation = logfiles.Rotation.from_config("CONDOR_DOCKER", lambda _name: None)
    assert rotation == logfiles.Rotation(10 * 1024 * 1024, 1)


def test_own_knobs_win_over_htcondors_defaults():
    config = {"MAX_DEFAULT_LOG": "1M", "MAX_NUM_DEFAULT_LOG": "2", "MAX_CONDOR_DOCKER_LOG": "5000"}
    assert logfiles.Rotation.from_config("CONDOR_DOCKER", config.get) == logfiles.Rotation(5000, 2)


@pytest.mark.parametrize("knob, value", [("MAX_CONDOR_DOCKER_LOG", "lots"), ("MAX_NUM_CONDOR_DOCKER_LOG", "0"),
                                         ("MAX_NUM_CONDOR_DOCKER_LOG", "x")])
def test_a_bad_value_names_the_knob(knob, value):
    with pytest.raises(logfiles.LogConfigError, match=knob):
        logfiles.Rotation.from_config("CONDOR_DOCKER", {knob: value}.get)


def test_the_log_rotates_into_old_files_named_as_htcondor_names_them(tmp_path):
    path = tmp_path / "CondorDockerLog"
    handler = logfiles.rotating_handler(str(path), logfiles.Rotation(max_bytes=200, max_num=2))
    logger = logging.getLogger("condor_docker.test_logfiles")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for line in range(40):
            logger.warning("line %d %s", line, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["CondorDockerLog", "CondorDockerLog.old", "CondorDockerLog.old.1"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    assert "line 39" in path.read_text()


@pytest.mark.parametrize("text, rotation", [
    ("1000 Bytes", logfiles.Rotation(1000, 1)), ("10 Mb", logfiles.Rotation(10 * 1024 ** 2, 1)),
    ("1 Tb", logfiles.Rotation(1024 ** 4, 1)), ("10M", logfiles.Rotation(10 * 1024 ** 2, 1)),
    ("64k", logfiles.Rotation(64 * 1024, 1)), ("1 Day", logfiles.Rotation(0, 1, 86400)),
    ("10 Min", logfiles.Rotation(0, 1, 600)), ("5m", logfiles.Rotation(0, 1, 300)),
    ("2 Hr", logfiles.Rotation(0, 1, 7200)), ("1 Wk", logfiles.Rotation(0, 1, 604800)),
    ("30 Sec", logfiles.Rotation(0, 1, 30)), ("0", logfiles.Rotation(0, 1)),
])
def test_htcondors_size_and_time_units_are_read_as_htcondor_reads_them(text, rotation):
    assert logfiles.Rotation.from_config("CONDOR_DOCKER", {"MAX_DEFAULT_LOG": text}.get) == rotation


def test_a_log_given_an_age_rotates_when_it_is_that_old(tmp_path):
    path = tmp_path / "CondorDockerLog"
    handler = logfiles.rotating_handler(str(path), logfiles.Rotation(0, 1, 3600))
    logger = logging.getLogger("condor_docker.test_logfiles_age")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("young")
        handler.started -= 3600   # an hour later
        logger.warning("old enough")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "CondorDockerLog.old").read_text().strip().endswith("young")
    assert path.read_text().strip().endswith("old enough")
