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
