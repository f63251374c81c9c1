"""The launcher: the job's kill signals, dying by the container's signal, over-disk holds, usage without Chirp."""
from __future__ import annotations

import os
import signal

import classad2
import pytest
from testpaths import FIXTURES

from condor_docker.core import ads
from condor_docker.core.failures import Code
from condor_docker.starter import launch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# -- the job's kill signals ------------------------------------------------------------
@pytest.mark.parametrize("value, number", [
    ("SIGUSR1", signal.SIGUSR1), ("usr2", signal.SIGUSR2), ("SIGINT", signal.SIGINT), (10, 10), ("15", 15),
    ("SIGBOGUS", None), ("", None), (0, None), (999, None), (True, None), (1.5, None)])
def test_signal_number_reads_names_and_numbers_like_htcondor(value, number):
    assert launch.signal_number(value) == number


def test_kill_signals_come_from_killsig_removekillsig_holdkillsig():
    ad = classad2.parseOne('KillSig = "SIGUSR1"\nRemoveKillSig = 12\nHoldKillSig = "SIGWINCH"\n')
    found = launch.kill_signals(ad)
    assert set(found) == {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, 12}


def test_uncatchable_or_suspend_signals_are_never_kill_signals():
    ad = classad2.parseOne('KillSig = "SIGKILL"\nRemoveKillSig = "SIGSTOP"\nHoldKillSig = "SIGCONT"\n')
    assert launch.kill_signals(ad) == launch.RELAYED


def test_the_real_job_ad_has_the_default_signals():
    assert launch.kill_signals(ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))) == launch.RELAYED
    assert launch.kill_signals(None) == launch.RELAYED


def test_finish_dies_by_the_containers_signal(monkeypatch):
    died = []
    monkeypatch.setattr(launch, "_die_by_signal", lambda signum: died.append(signum) or 128 + signum)
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    assert launch.finish({"ok": True, "result": {"exit_code": None, "signal": 11}}) == 139
    assert died == [11]


def test_over_disk_exits_137_with_a_hold(monkeypatch, capsys):
    reported = []
    monkeypatch.setattr(launch.chirp, "set_delayed", lambda attrs, **kw: reported.append(attrs) or True)
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    failure = {"code": int(Code.OVER_DISK), "reason": "Docker job has gone over its disk limit of 10 KB"}
    assert launch.finish({"ok": True, "result": {"signal": 9, "failure": failure}}) == 137
    assert reported[0]["ChirpCondorDockerHoldSubCode"] == 103
    assert "over its disk limit" in capsys.readouterr().err


def test_usage_is_not_reported_without_chirp(monkeypatch):
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    assert launch.report_usage({"cpu_user_s": 1.0}) is False


def test_service_ports_are_appended_to_the_jobs_own_ad(tmp_path, monkeypatch):
    from condor_docker.starter import launch
    sent = []
    monkeypatch.setattr(launch.chirp, "set_delayed", lambda values, stderr=None: sent.append(values) or True)
    job_ad = tmp_path / ".job.ad"
    job_ad.write_text("ClusterId = 1\n")
    got = launch.publish_services({"web": 32768, "bad name": 1, "neg": -1, "txt": "80"},
                                  {"_CONDOR_JOB_AD": str(job_ad)})
    assert got == {"web": 32768} and sent == [{"web_HostPort": 32768}]
    assert job_ad.read_text() == "ClusterId = 1\nweb_HostPort = 32768\n"
    assert launch.publish_services("not a mapping", {}) == {}


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "device", "too large"])
def test_a_job_ad_that_is_not_a_plain_file_is_refused_at_once(tmp_path, kind):
    """A FIFO .job.ad hung the launcher in open(), a link to /dev/zero in read(); the agent refuses both."""
    import resource
    import subprocess
    import sys
    job_ad = tmp_path / ".job.ad"
    if kind == "fifo":
        os.mkfifo(job_ad)
    elif kind == "symlink to /dev/zero":
        job_ad.symlink_to("/dev/zero")
    elif kind == "too large":
        job_ad.write_bytes(b"A = 1\n" * (1 << 20))
    env = dict(os.environ, PYTHONPATH=REPO, _CONDOR_SCRATCH_DIR=str(tmp_path),
               _CONDOR_JOB_AD="/dev/zero" if kind == "device" else str(job_ad))
    env.pop("_CONDOR_CHIRP_CONFIG", None)
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))   # noqa: E731 (before: /dev/zero)
    done = subprocess.run([sys.executable, "-m", "condor_docker.cli", "launch", "--socket", str(tmp_path / "no.sock")],
                          env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=20, preexec_fn=limit)
    assert done.returncode == launch.EX_HOLD, done.stderr
    first = done.stderr.splitlines()[0]   # then Chirp's "cannot report" (no starter here)
    assert first.startswith("condor_docker: the job ad ") and "Traceback" not in done.stderr
    assert {"fifo": "not a FIFO", "symlink to /dev/zero": "not a symlink", "device": "not a character device",
            "too large": "is too large"}[kind] in first
