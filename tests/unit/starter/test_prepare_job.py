"""PREPARE_JOB and JOB_EXIT hooks against a fake agent, fed the real pool's hook stdin.

What the hook prints is merged by the starter with the ClassAd library, so
every output is parsed with classad2 here.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import classad2
import pytest

from condor_docker.core.arguments import parse_args_v2
from condor_docker.core.failures import Code, Failure, bound_requeue
from condor_docker.starter import job_exit, prepare_job
from condor_docker.wire import protocol

REPO = Path(__file__).resolve().parents[3]
from testpaths import FIXTURES as _FIXTURES

FIXTURES = Path(_FIXTURES)
LAUNCHER = "/opt/condor_docker/venv/bin/condor_docker"


class FakeAgent:
    """A unix-socket server speaking protocol.Connection, answering from a dict of op -> reply."""

    def __init__(self, path: Path, replies: dict) -> None:
        self.path = str(path)
        self.replies = replies
        self.requests: list[dict] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            connection = protocol.Connection(sock)
            try:
                request, _ = connection.receive()
                if request is not None:
                    self.requests.append(request)
                    reply = self.replies[request["op"]]
                    for message in (reply if isinstance(reply, list) else [reply]):   # events, then the answer
                        connection.send(message)
            finally:
                connection.close()

    def close(self) -> None:
        try:
            self._server.shutdown(socket.SHUT_RDWR)   # wakes the accept() in the thread
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="cdhook") as tmp:
        yield Path(tmp)


def real_stdin(**changes: str) -> str:
    """The real PREPARE_JOB stdin, with some attributes replaced (values in ClassAd syntax)."""
    lines = []
    for line in (FIXTURES / "prepare-hook-stdin.ad").read_text().splitlines():
        name = line.split("=", 1)[0].strip()
        if name in changes:
            line = f"{name} = {changes.pop(name)}"
        lines.append(line)
    lines += [f"{name} = {value}" for name, value in changes.items()]
    return "\n".join(lines) + "\n"


def run_prepare(stdin_text: str, socket_path: str, *extra: str, cwd: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        status = prepare_job.main_prepare_job(["--socket", socket_path, "--launcher", LAUNCHER, *extra],
                                        stdin=io.StringIO(stdin_text), stdout=out)
    finally:
        os.chdir(old)
    return status, out.getvalue()


def parse(text: str) -> classad2.ClassAd:
    return classad2.parseOne(text)


# ------------------------------------------------------------------ pass-through


def test_non_docker_job_passes_through_silently(sock_dir):
    stdin = real_stdin(WantDocker="false", JobUniverse="5", DockerImage="undefined")
    status, out = run_prepare(stdin, str(sock_dir / "none.sock"))
    assert (status, out) == (0, "")


def test_vanilla_universe_job_passes_through_even_without_an_agent(sock_dir):
    stdin = real_stdin(WantDocker="false", JobUniverse="5")
    stdin = "\n".join(l for l in stdin.splitlines() if not l.startswith("DockerImage")) + "\n"
    status, out = run_prepare(stdin, str(sock_dir / "none.sock"))
    assert (status, out) == (0, "")


# ------------------------------------------------------------------ success


def test_docker_job_is_rewritten_to_run_the_launcher(sock_dir):
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": {"ok": True, "image": "busybox:local"}})
    scratch = tempfile.mkdtemp(prefix="cdscratch")
    try:
        status, out = run_prepare(real_stdin(), agent.path, cwd=scratch)
    finally:
        agent.close()
        os.rmdir(scratch)
    assert status == 0
    ad = parse(out)
    assert ad["WantDocker"] is False
    assert ad["Cmd"] == LAUNCHER
    assert parse_args_v2(ad["Arguments"]) == ["launch", "--socket", agent.path]
    assert ad["TransferExecutable"] is False   # else the starter runs <scratch>/condor_docker
    assert ad[prepare_job.SOCKET_ATTR] == agent.path
    assert "HookStatusCode" not in ad
    [request] = agent.requests
    assert request["op"] == "prepare"
    assert request["scratch_dir"] == os.path.realpath(scratch)
    assert "DockerImage = \"busybox:local\"" in request["job_ad"]


def test_socket_path_with_spaces_is_quoted_in_v2_arguments():
    options = prepare_job.HookOptions(socket="/run/my agent/a'b.sock", launcher=LAUNCHER, max_requeues=3, timeout=1)
    ad = parse(classad_lines(prepare_job.rewrite_attrs(options, None)))
    assert parse_args_v2(ad["Arguments"]) == ["launch", "--socket", "/run/my agent/a'b.sock"]


def test_which_finds_what_shutil_which_finds(tmp_path, monkeypatch):
    """PREPARE_JOB looks its launcher up without shutil (its import is a few ms of every job's start)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "a" / "tool").chmod(0o755)
    (tmp_path / "a" / "plain").write_text("")
    (tmp_path / "a" / "dir").mkdir()
    for path in (f"{tmp_path}/none:{tmp_path}/a", "", f"{tmp_path}/a:{tmp_path}/a", "/usr/bin:/bin"):
        monkeypatch.setenv("PATH", path)
        for name in ("tool", "plain", "dir", "sh", "no-such-tool"):
            assert prepare_job.which(name) == shutil.which(name), (path, name)


def test_default_launcher_is_an_absolute_executable():
    path, leading = prepare_job.default_launcher()
    assert os.path.isabs(path) and os.access(path, os.X_OK)
    if leading:   # run from a checkout: the interpreter with -m
        assert leading == ("-m", "condor_docker.cli")


def classad_lines(attrs: dict) -> str:
    from condor_docker.core.ads import format_ad_lines
    return format_ad_lines(attrs)


# ------------------------------------------------------------------ failures


def test_agent_hold_becomes_hook_status_1_to_299(sock_dir):
    reason = "127.0.0.1:5000/nope:1: manifest unknown"
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": {"ok": False, "failure": {
        "code": int(Code.IMAGE_NOT_FOUND), "reason": reason}}})
    try:
        status, out = run_prepare(real_stdin(), agent.path)
    finally:
        agent.close()
    assert status == 1
    ad = parse(out)
    assert ad["HookStatusCode"] == 12
    assert ad["HookStatusMessage"] == reason
    assert "WantDocker" not in ad and "Cmd" not in ad


def test_agent_unavailable_requeues_with_the_socket_named(sock_dir):
    missing = str(sock_dir / "agent.sock")
    status, out = run_prepare(real_stdin(NumShadowStarts="1"), missing)
    assert status == 1
    ad = parse(out)
    assert ad["HookStatusCode"] == int(Code.AGENT_UNAVAILABLE) == 304
    assert missing in ad["HookStatusMessage"]


def test_agent_unavailable_is_held_after_max_requeues(sock_dir):
    missing = str(sock_dir / "agent.sock")
    assert parse(run_prepare(real_stdin(NumShadowStarts="3"), missing)[1])["HookStatusCode"] == 304
    status, out = run_prepare(real_stdin(NumShadowStarts="4"), missing)
    ad = parse(out)
    assert status == 1
    assert ad["HookStatusCode"] == int(Code.TOO_MANY_REQUEUES) == 19
    assert "304" not in ad["HookStatusMessage"] and missing in ad["HookStatusMessage"]
    # the bound is an option, so it can follow CONDOR_DOCKER_MAX_REQUEUES
    assert parse(run_prepare(real_stdin(NumShadowStarts="4"), missing, "--max-requeues", "5")[1])[
        "HookStatusCode"] == 304


def test_agent_requeue_is_bounded_too(sock_dir):
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": {"ok": False, "failure": {
        "code": int(Code.REGISTRY_UNREACHABLE), "reason": "connection refused"}}})
    try:
        first = parse(run_prepare(real_stdin(NumShadowStarts="1"), agent.path)[1])
        later = parse(run_prepare(real_stdin(NumShadowStarts="9"), agent.path)[1])
    finally:
        agent.close()
    assert first["HookStatusCode"] == 302
    assert later["HookStatusCode"] == 19 and "connection refused" in later["HookStatusMessage"]


def test_one_requeue_to_hold_rule():
    transient = Failure(Code.REGISTRY_UNREACHABLE, "connection refused")
    assert bound_requeue(transient, 3, 3) is transient
    held = bound_requeue(transient, 4, 3)
    assert held.code == Code.TOO_MANY_REQUEUES
    assert held.reason == "gave up after 4 attempts (limit 3); last error: connection refused"
    hold = Failure(Code.IMAGE_NOT_FOUND, "no such image")
    assert bound_requeue(hold, 99, 0) is hold


def test_bad_ad_on_stdin_is_held(sock_dir):
    status, out = run_prepare("this is [ not an ad\n", str(sock_dir / "x.sock"))
    assert status == 1
    ad = parse(out)
    assert ad["HookStatusCode"] == int(Code.BAD_JOB_AD)


def test_messages_with_quotes_and_newlines_still_parse(sock_dir):
    reason = 'pull "x" failed:\n\\ back\\slash'
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": {"ok": False, "failure": {"code": 18, "reason": reason}}})
    try:
        ad = parse(run_prepare(real_stdin(), agent.path)[1])
    finally:
        agent.close()
    assert ad["HookStatusCode"] == 18
    assert "\n" not in ad["HookStatusMessage"] and '"x"' in ad["HookStatusMessage"]


def test_prepare_job_cli_path_does_not_import_docker(sock_dir):
    """The hook must not pay for the Docker SDK.

    (htcondor2 does get imported: classad2's old-format parser loads it, see
    ads.parse_ad; that is ads.py's to fix, so it is only reported here.)
    """
    code = ("import sys, io; from condor_docker import cli; rc = cli.main(sys.argv[1:]); "
            "sys.exit(99 if 'docker' in sys.modules else rc)")
    proc = subprocess.run([sys.executable, "-c", code, "prepare-job", "--socket", str(sock_dir / "n.sock")],
                          input=real_stdin(), capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    assert parse(proc.stdout)["HookStatusCode"] == 304


# ------------------------------------------------------------------ JOB_EXIT


def exit_stdin(**changes: str) -> str:
    lines = (FIXTURES / "job-exit-hook-stdin.ad").read_text().splitlines()
    out = [l for l in lines if l.split("=", 1)[0].strip() not in changes]
    out += [f"{k} = {v}" for k, v in changes.items()]
    return "\n".join(out) + "\n"


OLD_AGENT = {"ok": False, "failure": {"code": 16, "reason": "unknown op 'cleanup_starter_job'"}}   # before 17.3
NO_STARTER = {"ok": False, "failure": {"code": 16, "reason": "process 9 has no condor_starter among its ancestors"},
              "error": "no_starter"}


def _job_exit_with(sock_dir, replies: dict) -> tuple[int, "FakeAgent"]:
    """job-exit `exit` against a fake agent (named in the ad) answering `replies`; (status, the agent)."""
    agent = FakeAgent(sock_dir / "agent.sock", replies)
    try:
        status = job_exit.main_job_exit(["exit"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: f'"{agent.path}"'})))
    finally:
        agent.close()
    return status, agent


def test_job_exit_asks_the_agent_of_the_ad_socket_for_its_starters_job(sock_dir, capsys):
    status, agent = _job_exit_with(sock_dir, {"cleanup_starter_job": {"ok": True, "removed": ["HTCJob_28_0_slot1_1"]}})
    assert status == 0
    assert agent.requests == [{"op": "cleanup_starter_job"}]   # no job id: the agent asks the kernel
    assert "removed HTCJob_28_0_slot1_1" in capsys.readouterr().err


@pytest.mark.parametrize("refusal", [OLD_AGENT, NO_STARTER], ids=["older-agent", "no-starter"])
def test_job_exit_falls_back_to_the_job_id_from_the_ad(sock_dir, capsys, refusal):
    """An agent from before cleanup_starter_job, or no condor_starter above the hook: `cleanup` as before."""
    status, agent = _job_exit_with(sock_dir, {"cleanup_starter_job": refusal,
                                              "cleanup": {"ok": True, "removed": ["HTCJob_28_0_slot1_1"]}})
    assert status == 0
    assert agent.requests == [{"op": "cleanup_starter_job"},
                              {"op": "cleanup", "cluster": 28, "proc": 0, "slot": "slot1_1"}]
    assert "job 28.0 on slot1_1: removed HTCJob_28_0_slot1_1" in capsys.readouterr().err


def test_job_exit_reports_another_refusal_and_does_not_fall_back(sock_dir, capsys):
    refusal = {"ok": False, "failure": {"code": 16, "reason": "process 9 exited while its request was checked"}}
    agent = FakeAgent(sock_dir / "agent.sock", {"cleanup_starter_job": refusal})
    try:
        assert job_exit.main_job_exit(["exit"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: f'"{agent.path}"'}))) == 0
    finally:
        agent.close()
    assert agent.requests == [{"op": "cleanup_starter_job"}]
    assert "cleanup failed: process 9 exited while its request was checked" in capsys.readouterr().err


@pytest.mark.parametrize("reply", [{"ok": False, "failure": "no"}, {"ok": False}, {"ok": False, "failure": [1]}])
def test_job_exit_reports_any_refusal_in_one_line(sock_dir, capsys, reply):
    """Whatever listens on the socket (a person may run the hook by hand) gets one line, never a traceback."""
    agent = FakeAgent(sock_dir / "agent.sock", {"cleanup_starter_job": reply})
    try:
        assert job_exit.main_job_exit(["exit"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: f'"{agent.path}"'}))) == 0
    finally:
        agent.close()
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "cleanup failed" in err, err


@pytest.mark.parametrize("lines, found", [
    ('CondorDockerAgentSocket = "/run/condor_docker/agent.sock"', "/run/condor_docker/agent.sock"),
    ('  condordockeragentsocket="/s"  ', "/s"),                     # ClassAd names ignore case
    ('CondorDockerAgentSocket = "/a"\nCondorDockerAgentSocket = "/b"', "/b"),   # the last one, as the parser
    ('ClusterId = 28\nCmd = "/bin/sh"', None),                      # not prepared by us
    ('MyCondorDockerAgentSocket = "/x"\nCondorDockerAgentSocketX = "/y"', None),
    ('CondorDockerAgentSocket = "/with \\"quote\\""', ""),        # escapes: not a plain string
    ('CondorDockerAgentSocket = "/back\\\\slash"', ""),
    ('CondorDockerAgentSocket = "/a" "/b"', ""),
    ('CondorDockerAgentSocket = strcat("/a", "/b")', ""),
    ('CondorDockerAgentSocket = "/cut', ""),
    ('CondorDockerAgentSocket = ""', ""),
    ('CondorDockerAgentSocket = "/tab\there"', ""),
    ('CondorDockerAgentSocket = "/s"\nCondorDockerAgentSocket = undefined', ""),
    ('CondorDockerAgentSocket = "/s"\r', "/s"),
    ('CondorDockerAgentSocket = "/line\u2028sep"', "/line\u2028sep"),   # one line of the ad, not two
    ("", None),
])
def test_the_socket_line_is_read_strictly(lines, found):
    assert job_exit.socket_line(lines + "\n") == found


def test_a_socket_line_that_is_not_a_plain_path_asks_the_default_socket(sock_dir, capsys, monkeypatch):
    agent = FakeAgent(sock_dir / "agent.sock", {"cleanup_starter_job": {"ok": True, "removed": []}})
    monkeypatch.setenv("CONDOR_DOCKER_AGENT_SOCKET", agent.path)   # where the default resolver looks first
    try:
        assert job_exit.main_job_exit(["exit"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: '"/el\\"sewhere"'}))) == 0
    finally:
        agent.close()
    assert agent.requests == [{"op": "cleanup_starter_job"}]
    assert "CondorDockerAgentSocket in the job ad is not a plain path; asking the default socket" in \
        capsys.readouterr().err


def test_job_exit_without_agent_logs_and_exits_0(sock_dir, capsys):
    status = job_exit.main_job_exit(["remove"], stdin=io.StringIO(
        exit_stdin(**{job_exit.SOCKET_ATTR: f'"{sock_dir / "gone.sock"}"'})))
    assert status == 0
    assert "gone.sock" in capsys.readouterr().err


def test_job_exit_with_an_unknown_reason_says_cleaned_up_only_when_it_was(sock_dir, capsys):
    """`job-exit frobnicate` with no agent said "cleaned up all the same" right after "does not answer"."""
    status = job_exit.main_job_exit(["frobnicate"], stdin=io.StringIO(
        exit_stdin(**{job_exit.SOCKET_ATTR: f'"{sock_dir / "gone.sock"}"'})))
    err = capsys.readouterr().err
    assert status == 64 and "cleaned up all the same" not in err
    assert "unknown reason 'frobnicate'" in err.splitlines()[-1] and "NOT cleaned up" in err.splitlines()[-1]
    agent = FakeAgent(sock_dir / "agent.sock", {"cleanup_starter_job": {"ok": True, "removed": ["c"]}})
    try:
        assert job_exit.main_job_exit(["frobnicate"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: f'"{agent.path}"'}))) == 64
    finally:
        agent.close()
    assert capsys.readouterr().err.splitlines()[-1].endswith("the container was cleaned up all the same")
    agent = FakeAgent(sock_dir / "refusing.sock", {"cleanup_starter_job": {"ok": False, "failure": {"reason": "no"}}})
    try:
        assert job_exit.main_job_exit(["frobnicate"], stdin=io.StringIO(
            exit_stdin(**{job_exit.SOCKET_ATTR: f'"{agent.path}"'}))) == 64
    finally:
        agent.close()
    assert "NOT cleaned up" in capsys.readouterr().err.splitlines()[-1]


def test_job_exit_of_a_non_docker_job_does_nothing(capsys):
    stdin = "\n".join(l for l in exit_stdin(WantDocker="false").splitlines()
                      if not l.startswith(("DockerImage", "CDX"))) + "\n"
    assert job_exit.main_job_exit(["exit"], stdin=io.StringIO(stdin)) == 0
    assert capsys.readouterr().err == ""


def test_job_exit_never_fails_on_garbage(capsys):
    assert job_exit.main_job_exit(["exit"], stdin=io.StringIO("[[[ nonsense")) == 0


def test_job_exit_with_a_wrong_command_line_says_so_and_exits_usage(capsys):
    """`job-exit --bogus` used to exit 0: HTCondor never passes an option, so a person did."""
    from condor_docker.core import exitcodes
    assert job_exit.main_job_exit(["--bogus"], stdin=io.StringIO("")) == exitcodes.USAGE == 64
    assert capsys.readouterr().err.strip() == f"condor_docker job-exit: {job_exit.USAGE}"
    assert job_exit.main_job_exit(["exit", "remove"], stdin=io.StringIO("")) == exitcodes.USAGE


@pytest.mark.parametrize("argv, parsed", [
    ([], ("exit", None)), (["hold"], ("hold", None)), (["--socket", "/s", "evict"], ("evict", "/s")),
    (["remove", "--socket=/t"], ("remove", "/t")), (["--bogus"], None), (["exit", "extra"], None),
    (["--socket"], None)])
def test_job_exit_words(argv, parsed):
    assert job_exit.parse_args(argv) == parsed


def test_job_exit_socket_override_wins_and_a_cut_ad_still_finds_the_job(sock_dir):
    """JOB_EXIT skips the completeness check: attributes before the cut are still used."""
    agent = FakeAgent(sock_dir / "agent.sock", {"cleanup_starter_job": NO_STARTER,
                                                "cleanup": {"ok": True, "removed": []}})
    stdin = 'ClusterId = 28\nProcId = 0\nRemoteHost = "slot1_1@vm"\nCondorDockerAgentSocket = "/nowhere"\n' \
            'Cmd = "/bin/sh\nArguments = "cut here'
    try:
        assert job_exit.main_job_exit(["--socket", str(agent.path), "exit"], stdin=io.StringIO(stdin)) == 0
    finally:
        agent.close()
    assert agent.requests == [{"op": "cleanup_starter_job"},
                              {"op": "cleanup", "cluster": 28, "proc": 0, "slot": "slot1_1"}]


def test_the_job_exit_hook_imports_nothing_it_does_not_need():
    """The starter waits for JOB_EXIT: its module must not pull in argparse, docker or htcondor2."""
    code = "import sys, condor_docker.starter.job_exit as j; print(sorted({'argparse', 'docker', 'htcondor2', " \
           "'condor_docker.starter.prepare_job', 'condor_docker.core.request', 'dataclasses'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_the_job_exit_hook_does_not_import_classad2():
    """The ClassAd library is most of what the hook's start cost (issue 17): not on its common path.

    Importing the module, and a whole run of the common path (the socket line found,
    the agent asked with cleanup_starter_job), leave classad2 and core.ads unloaded
    (and typing: the wire's annotations are not evaluated at run time).
    """
    heavy = "{'classad2', 'condor_docker.core.ads', 'condor_docker.core.request', 'condor_docker.core.settings', " \
            "'condor_docker.core.jobkind', 'typing', 'dataclasses'}"
    code = ("import io, sys\nimport condor_docker.starter.job_exit as j\n"
            f"print(sorted({heavy} & set(sys.modules)))\n"
            "j.main_job_exit(['exit'], stdin=io.StringIO('ClusterId = 28\\nCondorDockerAgentSocket = "
            "\"/nonexistent/agent.sock\"\\n'))\n"
            f"print(sorted({heavy} & set(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.split("\n")[:2] == ["[]", "[]"], proc.stdout + proc.stderr
    assert "/nonexistent/agent.sock" in proc.stderr


@pytest.mark.parametrize("command, stdin", [("prepare-job", "prepare-hook-stdin.ad"), ("launch", None)])
def test_prepare_job_and_the_launcher_run_without_needless_imports(command, stdin, tmp_path):
    """A whole run up to the agent call (none answers) through the console script's `main`: the
    dataclass, shutil, traceback and knob-table imports they once made are gone (issue 17)."""
    (tmp_path / ".job.ad").write_text((FIXTURES / "job.ad").read_text())
    needless = "['dataclasses', 'shutil', 'traceback', 'condor_docker.core.settings', 'condor_docker.core.request']"
    code = ("import sys\nfrom condor_docker.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            f"    print(sorted(set({needless}) & set(sys.modules)), file=sys.__stderr__)\n")
    proc = subprocess.run([sys.executable, "-c", code, command, "--socket", str(tmp_path / "none.sock")],
                          input=(FIXTURES / stdin).read_text() if stdin else "", capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                                         "_CONDOR_JOB_AD": str(tmp_path / ".job.ad")})
    assert "none.sock" in proc.stderr, proc.stderr          # it got as far as asking the agent
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_slot_comes_from_remote_host_or_the_starter_env():
    ad = classad2.parseOne('RemoteHost = "slot2_7@node"\n')
    assert job_exit.slot_from(ad, {}) == "slot2_7"
    assert job_exit.slot_from(classad2.ClassAd(), {"_CONDOR_SLOT": "slot1_3"}) == "slot1_3"


def test_pull_progress_events_reach_the_starter_log_and_chirp_is_tried_once(sock_dir, capsys):
    progress = {"event": "pull_progress", "reference": "r/big:1", "layers_done": 1, "layers": 3,
                "bytes_done": 50 * 1024 * 1024, "bytes_total": 200 * 1024 * 1024, "seconds": 12.0}
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": [progress, dict(progress, seconds=17.0),
                                                            {"ok": True, "image": "r/big:1"}]})
    scratch = tempfile.mkdtemp(prefix="cdhook-scratch")
    with open(os.path.join(scratch, ".chirp.config"), "w") as config:   # a Chirp server that is not there
        config.write("127.0.0.1 9 cookie\n")
    try:
        status, out = run_prepare(real_stdin(), agent.path, cwd=scratch)
    finally:
        agent.close()
        shutil.rmtree(scratch)
    err = capsys.readouterr().err
    assert status == 0 and parse(out)["WantDocker"] is False
    assert agent.requests[0]["progress"] is True
    assert "pulling r/big:1: 50.0/200.0 MB, 1/3 layers, 12 s" in err and "17 s" in err
    assert "done pulling r/big:1: 200.0/200.0 MB, 3/3 layers" in err
    assert err.count("ChirpCondorDockerPullProgress") == 1   # one failed Chirp attempt, then no more
# ------------------------------------------------------------------ universe = container


def container_stdin(image: str, source: str) -> str:
    """The real stdin turned into what condor_submit makes of `universe = container` (no DockerImage)."""
    stdin = real_stdin(WantDocker="undefined", WantContainer="true", ContainerImage=f'"{image}"',
                       ContainerImageSource=f'"{source}"')
    return "\n".join(l for l in stdin.splitlines() if not l.startswith("DockerImage")) + "\n"


def test_docker_url_container_job_is_ours(sock_dir):
    agent = FakeAgent(sock_dir / "agent.sock", {"prepare": {"ok": True, "image": "reg:5000/img:1"}})
    scratch = tempfile.mkdtemp(prefix="cdscratch")
    try:
        status, out = run_prepare(container_stdin("docker://reg:5000/img:1", "docker"), agent.path, cwd=scratch)
    finally:
        agent.close()
        os.rmdir(scratch)
    assert status == 0
    ad = parse(out)
    assert ad["WantContainer"] is False and ad["WantDocker"] is False and ad["WantDockerImage"] is False
    assert ad["Cmd"] == LAUNCHER
    assert [r["op"] for r in agent.requests] == ["prepare"]


@pytest.mark.parametrize("image,words", [("/home/u/img.sif", ".sif"), ("sandbox_dir", "sandbox directory")])
def test_non_docker_container_image_is_held_clearly(sock_dir, image, words):
    scratch = tempfile.mkdtemp(prefix="cdscratch")
    try:
        status, out = run_prepare(container_stdin(image, "cedar"), str(sock_dir / "none.sock"), cwd=scratch)
    finally:
        os.rmdir(scratch)
    assert status == 1
    ad = parse(out)
    assert ad["HookStatusCode"] == Code.INVALID_IMAGE
    assert words in ad["HookStatusMessage"] and "docker://" in ad["HookStatusMessage"]


def test_non_docker_container_image_passes_where_htcondor_has_singularity(sock_dir):
    scratch = tempfile.mkdtemp(prefix="cdscratch")
    machine = (FIXTURES / "machine.ad").read_text().rstrip("\n") + "\nHasSingularity = true\n"
    try:
        Path(scratch, ".machine.ad").write_text(machine)
        status, out = run_prepare(container_stdin("img.sif", "cedar"), str(sock_dir / "none.sock"), cwd=scratch)
    finally:
        os.unlink(os.path.join(scratch, ".machine.ad"))
        os.rmdir(scratch)
    assert (status, out) == (0, "")


@pytest.mark.parametrize("extra, ours", [
    ('Arguments = "caf\udce9"\n', False),                                  # Latin-1 bytes through the hook's stdin
    ("Huge = " + "+".join(["1"] * 20000) + "\n", False),                   # past the reader's bounds
    ('Arguments = "caf\udce9"\nWantDocker = true\nDockerImage = "i:1"\n', True),
    ('DockerImage = "caf\udce9"\nJobUniverse = 5\n', True),                # the kind line itself is unreadable
])
def test_an_ad_the_reader_refuses_is_held_only_when_it_may_be_a_docker_job(tmp_path, extra, ours):
    text = "ClusterId = 1\nProcId = 0\nJobUniverse = 5\nCmd = \"/bin/true\"\n" + extra
    attrs, status = prepare_job.prepare_job(text, str(tmp_path), prepare_job.HookOptions(
        socket=str(tmp_path / "none.sock"), launcher="/bin/false", max_requeues=3, timeout=5))
    assert (status, "HookStatusCode" in attrs) == ((1, True) if ours else (0, False)), attrs


@pytest.mark.parametrize("kind", ['DockerImage = Img\nImg = "i:1"\n', 'WantDocker = Yes\n',
                                  'DockerImage = strcat("i:", Tag)\nTag = "1"\n',
                                  'WantContainer = true\nContainerImage = Img\nImg = "docker://i:1"\n'])
def test_a_refused_ad_whose_kind_lines_refer_elsewhere_is_held_not_passed_on(tmp_path, kind):
    # an independent review: the kind lines alone were undefined, read as "not ours", and the job ran outside us
    text = ("ClusterId = 1\nProcId = 0\nJobUniverse = 5\nCmd = \"/bin/true\"\n" + kind
            + "Junk = " + "+".join(["1"] * 5000) + "\n")
    attrs, status = prepare_job.prepare_job(text, str(tmp_path), prepare_job.HookOptions(
        socket=str(tmp_path / "none.sock"), launcher="/bin/false", max_requeues=3, timeout=5))
    assert status == 1 and attrs["HookStatusCode"] == 10, attrs
