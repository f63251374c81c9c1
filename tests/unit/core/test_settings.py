"""Knobs: defaults and overrides, bad values naming the knob and the fix, a field and a doc for each."""
from __future__ import annotations

import pytest

from condor_docker.core import settings


def test_defaults_and_overrides():
    s = settings.default_settings(CONDOR_DOCKER_PULL_TIMEOUT="30s", DOCKER_NETWORKS="a, b")
    assert s.pull_timeout == 30 and s.networks == ("a", "b") and s.drop_all_capabilities is True


@pytest.mark.parametrize("knob,value,words", [
    ("CONDOR_DOCKER_PULL_TIMEOUT", "soon", "not a number of seconds"),
    ("CONDOR_DOCKER_PULL_TIMEOUT", "0", "below its minimum"),
    ("DOCKER_DROP_ALL_CAPABILITIES", "maybe", "write true or false, or use only Owner"),
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


@pytest.mark.parametrize("pair,words", [
    ("CONDOR_DOCKER_MAX_REQUEUES", "write --set KNOB=VALUE"),
    ("=3", "write --set KNOB=VALUE"),
    ("NO_SUCH_KNOB=1", "NO_SUCH_KNOB is not a condor_docker knob"),
    ("CONDOR_DOCKER_MAX_REQUEUES=many", "is not a whole number"),
    ("CONDOR_DOCKER_DEFAULT_NETWORK=labnet", "DOCKER_NETWORKS"),
])
def test_a_bad_set_pair_is_a_usage_error(pair, words):
    with pytest.raises(settings.OverrideError) as caught:
        settings.settings_from_command_line([pair], lambda _name: None)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_misspelled_set_knob_gets_a_did_you_mean_and_case_does_not_matter():
    with pytest.raises(settings.OverrideError) as caught:
        settings.settings_from_command_line(["CONDOR_DOCKER_MAX_REQUEUS=3"], lambda _name: None)
    assert str(caught.value) == ("--set 'CONDOR_DOCKER_MAX_REQUEUS=3': CONDOR_DOCKER_MAX_REQUEUS is not a condor_docker "
                                 "knob; did you mean CONDOR_DOCKER_MAX_REQUEUES? (`condor_docker config knob-table` "
                                 "lists them)")
    with pytest.raises(settings.OverrideError) as caught:
        settings.settings_from_command_line(["NOTHING_LIKE_IT=1"], lambda _name: None)
    assert "did you mean" not in str(caught.value)
    assert settings.settings_from_command_line(["condor_docker_max_requeues=4"], lambda _name: None).max_requeues == 4


@pytest.mark.parametrize("pair", ["CONDOR_DOCKER_MAX_REQUEUES=" + "9x" * 50000, "A" * 100000, "B" * 100000 + "=1"])
def test_a_huge_set_pair_still_gives_one_short_line(pair):
    with pytest.raises(settings.OverrideError) as caught:
        settings.settings_from_command_line([pair], lambda _name: None)
    assert len(str(caught.value)) < 400 and "characters)" in str(caught.value) and "\n" not in str(caught.value)


def test_set_pairs_override_the_defaults():
    s = settings.settings_from_command_line(
        ["CONDOR_DOCKER_MAX_REQUEUES=5", "DOCKER_VOLUMES=DATA", "DOCKER_VOLUME_DIR_DATA=/srv:/data:ro"],
        lambda _name: None, defaults={"CONDOR_DOCKER_MAX_REQUEUES": "2", "CONDOR_DOCKER_KILL_GRACE": "3"})
    assert s.max_requeues == 5 and s.kill_grace == 3 and s.volumes[0].target == "/data"
    with pytest.raises(settings.SettingsError) as caught:   # the configuration is at fault, not the pair
        settings.settings_from_command_line(["CONDOR_DOCKER_MAX_REQUEUES=5"],
                                            {"DOCKER_VOLUMES": "DATA"}.get)
    assert not isinstance(caught.value, settings.OverrideError)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "1e12"])
def test_a_duration_must_be_a_finite_number_of_seconds(value):
    with pytest.raises(settings.SettingsError, match="is not a number of seconds"):
        settings.default_settings(CONDOR_DOCKER_HEALTH_PERIOD=value)
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        settings.seconds(value)
    assert settings.seconds("2.5") == 2.5


def test_htcondor_typed_knobs_are_read_as_the_admin_wrote_them(tmp_path, monkeypatch):
    """htcondor2.param turns DOCKER_RUN_UNDER_INIT = maybe into True and an expression in a knob
    HTCondor types into its default: read that way, a typo would run and a per-job rule be lost."""
    import htcondor2
    config = tmp_path / "condor_config"
    config.write_text('DOCKER_DROP_ALL_CAPABILITIES = Owner != "alice"\nDOCKER_IMAGE_CACHE_SIZE = 3\n'
                      "MY_INIT = maybe\nDOCKER_RUN_UNDER_INIT = $(MY_INIT)\n")
    monkeypatch.setenv("CONDOR_CONFIG", str(config))
    htcondor2.reload_config()
    try:
        assert htcondor2.param.get("DOCKER_RUN_UNDER_INIT") is True      # what the binding itself says
        with pytest.raises(settings.SettingsError, match="DOCKER_RUN_UNDER_INIT = 'maybe' is not a boolean"):
            settings.load_settings()
        config.write_text('DOCKER_DROP_ALL_CAPABILITIES = Owner != "alice"\n')
        htcondor2.reload_config()
        loaded = settings.load_settings()
        assert loaded.drop_all_capabilities == settings.KnobExpression(
            "DOCKER_DROP_ALL_CAPABILITIES", 'Owner != "alice"', "bool")
        assert settings._RAW_READER not in htcondor2.param
    finally:
        monkeypatch.delenv("CONDOR_CONFIG")
        htcondor2.reload_config()


def test_docker_run_as_root_true_stops_the_agent_instead_of_running_jobs_as_their_owner():
    """HTCondor runs the container as root with DOCKER_RUN_AS_ROOT = true; ours never does, so a
    site that sets it is told at agent start, not surprised by jobs running as their owner."""
    with pytest.raises(settings.SettingsError, match=r"^DOCKER_RUN_AS_ROOT = 'true': condor_docker never runs"):
        settings.load_settings({"DOCKER_RUN_AS_ROOT": "true"}.get)
    for value in ("false", "FALSE", None):
        settings.load_settings({"DOCKER_RUN_AS_ROOT": value}.get)


def test_map_all_gpus_is_refused_not_ignored():
    with pytest.raises(settings.SettingsError, match="DOCKER_MAP_ALL_GPUS = 'true': condor_docker gives"):
        settings.default_settings(DOCKER_MAP_ALL_GPUS="true")
    settings.default_settings(DOCKER_MAP_ALL_GPUS="false")
