"""The real `condor_docker` entry point in a subprocess: exit codes and the one line on stderr.

Every case here once printed a traceback, a usage block, nothing, or exited with a
code that lied (issue 16).  None needs the engine: each refusal comes before it,
and the dead engine is a socket path with nothing behind it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from condor_docker.core import exitcodes
from condor_docker.core.version import VERSION

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"


def condor_docker(*argv, cwd=None, env_extra=None, stdin=""):
    env = dict(os.environ, PYTHONPATH=REPO, **(env_extra or {}))
    env.pop("CONDOR_DOCKER_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "condor_docker.cli", *argv], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60, env=env)


def one_line(done) -> str:
    """The whole of stderr, which must be exactly one line and no traceback."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def submit(tmp_path, **commands) -> str:
    lines = {"universe": "docker", "docker_image": IMAGE, "executable": "/bin/true", "transfer_executable": "false",
             "log": "job.log", **commands}
    queue = lines.pop("queue", "")
    (tmp_path / "job.sub").write_text("".join(f"{k} = {v}\n" for k, v in lines.items()) + f"queue {queue}\n")
    return str(tmp_path / "job.sub")


def run(tmp_path, *argv, **commands):
    return condor_docker("run", submit(tmp_path, **commands), "--state-dir", str(tmp_path / ".state"), *argv,
                         cwd=tmp_path)


@pytest.mark.parametrize("flag", ["--version", "-version", "-V"])
def test_version_in_both_spellings(flag):
    done = condor_docker(flag)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"condor_docker {VERSION}\n", "")


def test_help_groups_the_commands_by_who_runs_them():
    done = condor_docker("--help")
    assert done.returncode == 0
    people, htcondor = done.stdout.index("commands for people:"), done.stdout.index("commands HTCondor runs")
    assert people < done.stdout.index("  run ") < done.stdout.index("  doctor ") < htcondor
    assert htcondor < done.stdout.index("  prepare-job ") and htcondor < done.stdout.index("  job-exit ")


def test_unknown_command_and_unknown_option_exit_usage_in_one_line():
    assert one_line(done := condor_docker("frobnicate")).startswith("condor_docker: unknown command 'frobnicate'")
    assert done.returncode == exitcodes.USAGE
    done = condor_docker("run", "--bogus", "x.sub")
    assert done.returncode == exitcodes.USAGE == 64      # argparse's own 2 is run's "bad submit file"
    assert one_line(done) == ("condor_docker run: unrecognized arguments: --bogus; "
                              "`condor_docker run --help` lists the options")


def test_help_shows_defaults():
    done = condor_docker("run", "--help")
    text = " ".join(done.stdout.split())
    assert done.returncode == 0 and "(default: 5.0)" in text and "(default: None)" not in text


def test_refused_extra_argument_stops_the_run_before_any_job(tmp_path):
    """It used to print a thread traceback, run nothing, leave only a submit event, and exit 0."""
    done = run(tmp_path, "--set", "DOCKER_EXTRA_ARGUMENTS=--privileged")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done).startswith("condor_docker run: --set: DOCKER_EXTRA_ARGUMENTS: '--privileged' is not "
                                     "supported: use only --ulimit")
    assert not (tmp_path / "job.log").exists()          # nothing submitted, so condor_wait is not left waiting


def test_an_empty_user_is_bad_usage(tmp_path):
    """`--user ''` ran the job as nobody."""
    done = run(tmp_path, "--user", "")
    assert done.returncode == exitcodes.USAGE and done.stdout == ""
    assert one_line(done) == ("condor_docker run: --user '': give the name of an ordinary user (e.g. --user nobody), "
                              "or drop --user")


def test_set_without_equals_names_the_form():
    done = condor_docker("run", "x.sub", "--set", "NOEQUALS")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done) == ("condor_docker run: --set 'NOEQUALS': write --set KNOB=VALUE, "
                              "e.g. --set CONDOR_DOCKER_MAX_REQUEUES=3")


def test_unwritable_log_is_refused_before_anything_is_submitted(tmp_path):
    (tmp_path / "a-file").write_text("")
    done = run(tmp_path, log=str(tmp_path / "a-file" / "job.log"))
    assert done.returncode == exitcodes.CANTCREAT == 73
    assert one_line(done) == (f"condor_docker run: log = {tmp_path}/a-file/job.log: cannot write the job event log: "
                              "Not a directory; create its directory or point log at a writable file")


def test_a_log_that_takes_no_event_is_named_before_any_job_runs(tmp_path):
    """`log = /dev/full` opens, then said "cannot write the output: No space left on device" naming nothing."""
    done = run(tmp_path, log="/dev/full")
    assert done.returncode == exitcodes.CANTCREAT and done.stdout == ""
    assert one_line(done) == ("condor_docker run: log = /dev/full: cannot write the job event log: No space left on "
                              "device; create its directory or point log at a writable file")


def _run_until_started(tmp_path, path: str) -> subprocess.Popen:
    """`condor_docker run path` in the background, returned once job.log has its execute event."""
    import time
    proc = subprocess.Popen([sys.executable, "-m", "condor_docker.cli", "run", path, "--state-dir",
                             str(tmp_path / ".state")], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "job.log"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "001 (" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    return proc


def test_a_log_replaced_by_a_directory_while_the_job_runs_is_named_and_the_job_still_reported(tmp_path):
    """It was exit 70 and "job N: removed: ... internal error" although the job had completed."""
    proc = _run_until_started(tmp_path, submit(tmp_path, executable="/bin/sleep", arguments="3"))
    log = tmp_path / "job.log"
    log.unlink()
    log.mkdir()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == exitcodes.CANTCREAT, err
    assert out.endswith(".0: exited with code 0\n"), out
    assert err == (f"condor_docker run: log = {log}: cannot write the job event log: Is a directory; create its "
                   "directory or point log at a writable file\n")


@pytest.mark.parametrize("command, stream", [("output", "stdout"), ("error", "stderr")])
def test_job_output_that_cannot_be_written_holds_the_job_naming_the_command(tmp_path, command, stream):
    """`output = /dev/full` warned "output relay of HTCJob_... ended: [Errno 28]" and exited 0, the output lost."""
    done = run(tmp_path, executable="/bin/sh", arguments=f"\"-c 'echo lost >&{1 if stream == 'stdout' else 2}'\"",
               **{command: "/dev/full"})
    assert done.returncode == exitcodes.HELD, done.stderr
    assert done.stderr == ""
    assert done.stdout.endswith(f".0: held (subcode 10): {command} = /dev/full: the job's {stream} could not be "
                                f"written: No space left on device; free space there or point {command} at a "
                                "writable file\n"), done.stdout
    assert "Job was held." in (tmp_path / "job.log").read_text()


def test_unwritable_home_for_the_cluster_counter(tmp_path):
    (tmp_path / "a-file").write_text("")
    done = condor_docker("run", submit(tmp_path), cwd=tmp_path, env_extra={"HOME": str(tmp_path / "a-file")})
    assert done.returncode == exitcodes.CANTCREAT
    assert one_line(done).startswith(f"condor_docker run: cannot keep the cluster counter in {tmp_path}/a-file/")
    assert one_line(done).endswith("give --state-dir a directory you can write")


def test_queue_0_says_there_is_nothing_to_run(tmp_path):
    done = run(tmp_path, queue="0")
    assert done.returncode == 0
    assert one_line(done).endswith("job.sub queues no jobs (queue 0, or an empty item list); nothing to run")


@pytest.mark.parametrize("queue", ["x in ()", "x from empty.txt"])
def test_an_empty_item_list_says_there_is_nothing_to_run(tmp_path, queue):
    """It ran one job with $(x) empty; condor_submit queues none."""
    (tmp_path / "empty.txt").write_text("")
    done = run(tmp_path, queue=queue)
    assert done.returncode == 0 and done.stdout == ""
    assert one_line(done).endswith("job.sub queues no jobs (queue 0, or an empty item list); nothing to run")


def test_a_memory_request_over_this_machine_is_bad_input(tmp_path):
    done = run(tmp_path, request_memory="10T")
    assert done.returncode == exitcodes.BAD_INPUT == 2
    assert one_line(done).startswith("condor_docker run: request_memory = 10485760 MB: this machine has ")


@pytest.mark.parametrize("command, shown", [
    ("request_memory", "request_memory = 9223372036854775807 MB or more: this machine has "),
    ("request_disk", "request_disk = 9223372036854775807 KB or more: only "),
    ("request_cpus", "request_cpus = 9223372036854775807 or more: this machine has "),
])
@pytest.mark.parametrize("value", ["9223372036854775807", "99999999999999999999999"])
def test_a_request_past_what_an_ad_holds_is_too_big_for_this_machine(tmp_path, command, shown, value):
    """2**63 and over was a SystemError from classad2 (exit 70)."""
    done = run(tmp_path, **{command: value})
    assert done.returncode == exitcodes.BAD_INPUT
    assert one_line(done).startswith(f"condor_docker run: {shown}")


@pytest.mark.parametrize("command", ["request_memory", "request_disk", "requirements", "rank", "on_exit_remove",
                                     "periodic_hold", "+MyAttr"])
def test_an_expression_too_big_for_libclassad_is_bad_input(tmp_path, command):
    """A 200,000-term `64+0+0...` was a SIGSEGV in libclassad (exit 139): bounded as core/ads.py bounds ad values."""
    done = run(tmp_path, **{command: "64" + "+0" * 200_000})
    assert done.returncode == exitcodes.BAD_INPUT
    named = command.replace("+", "MY.")    # htcondor2's name for +MyAttr, as condor_submit's
    assert one_line(done) == (f"condor_docker run: {named}: the expression is 400002 characters long and not one "
                              "plain string; no job ad written by HTCondor has an expression over 16384; "
                              "write a shorter one")


def test_an_expression_with_too_many_operators_is_bad_input(tmp_path):
    done = run(tmp_path, requirements="||".join(["1"] * 5000))
    assert done.returncode == exitcodes.BAD_INPUT
    assert one_line(done).startswith("condor_docker run: requirements: the expression has 4999 operators, more than "
                                     "the 4096 allowed")


def test_a_request_of_no_cpu_is_bad_input_up_front(tmp_path):
    """request_cpus = 0 ran and was held 10 (exit 1) while -2 was refused up front (exit 2)."""
    done = run(tmp_path, request_cpus="0")
    assert done.returncode == exitcodes.BAD_INPUT and done.stdout == ""
    assert one_line(done) == "condor_docker run: request_cpus = 0: a job needs at least 1 CPU; raise request_cpus"
    assert not (tmp_path / "job.log").exists()


def test_a_request_cut_by_a_cap_knob_is_one_warning_line(tmp_path):
    """--set CONDOR_DOCKER_MAX_MEMORY_MB=10 ran a request_memory = 64 job with 10 MB without a word."""
    done = run(tmp_path, "--set", "CONDOR_DOCKER_MAX_MEMORY_MB=10", request_memory="64", queue="2")
    assert done.returncode == 0, done.stderr
    assert one_line(done) == ("condor_docker run: warning: request_memory = 64 MB is capped by "
                              "CONDOR_DOCKER_MAX_MEMORY_MB = 10: the job runs with 10 MB")


def test_a_memory_request_under_the_engines_floor_is_bad_input(tmp_path):
    """request_memory = 0 was held 18 by the engine ("Minimum memory limit allowed is 6MB") after a start."""
    done = run(tmp_path, request_memory="0")
    assert done.returncode == 2
    assert one_line(done) == ("condor_docker run: request_memory = 0 MB: a container needs at least 6 MB (the "
                              "engine's minimum); raise request_memory (a fraction is rounded up to whole MB, as "
                              "condor_submit does)")
    done = run(tmp_path, request_memory="5.5")      # was 5 MB (truncated), refused; condor_submit writes 6
    assert done.returncode == 0 and done.stdout.endswith(".0: exited with code 0\n"), done.stderr


def test_a_dead_engine_is_named_at_once_not_retried(tmp_path):
    socket_path = tmp_path / "dead.sock"
    done = run(tmp_path, "--set", f"CONDOR_DOCKER_ENGINE_URL=unix://{socket_path}")
    assert done.returncode == exitcodes.UNAVAILABLE == 69
    assert one_line(done) == (f"condor_docker run: no Docker engine at unix://{socket_path}: {socket_path} does not "
                              "exist; start the engine (systemctl start docker) or point at it with "
                              "--set CONDOR_DOCKER_ENGINE_URL=unix:///path/to/docker.sock")
    assert not (tmp_path / "job.log").exists()


@pytest.mark.parametrize("value", ["-1e308", "-1", "-.5e3", "-inf", "-nan", "1e400", "nan", "abc", ""])
def test_a_numeric_option_out_of_range_names_the_option_and_its_range(value):
    """Also a negative number in exponent form after a space: argparse alone reads it as a missing value."""
    done = condor_docker("run", "--retry-delay", value, "x.sub")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done) == (f"condor_docker run: argument --retry-delay: {value!r} is not a number of seconds "
                              "from 0 to 315360000; `condor_docker run --help` lists the options")


def test_advertise_ignores_extra_cron_words_and_still_publishes():
    """A startd cron line with stray words (STARTD_CRON_<name>_ARGS) must not unpublish HasDocker."""
    done = condor_docker("advertise", "--bogus", env_extra={"CONDOR_DOCKER_ENGINE_URL": "unix:///nonexistent.sock"})
    assert done.returncode == 0, done.stderr
    assert "HasDocker" in done.stdout, done.stdout


@pytest.mark.parametrize("argv", [["prepare-job", "--timeout", "nan"], ["prepare-job", "--timeout", "0"],
                                  ["run", "--periodic-interval", "0", "x.sub"]])
def test_hook_timeouts_and_periods_out_of_range_are_bad_usage(argv):
    """nan/-1 timeouts crashed in the socket layer (exit 70); a period of 0 made `run` spin."""
    done = condor_docker(*argv)
    assert done.returncode == exitcodes.USAGE
    assert "is not a number of seconds" in one_line(done)


@pytest.mark.parametrize("value", ["-1", "-5", "x", "1.5"])
def test_prepare_job_refuses_a_negative_or_non_integer_requeue_limit(value):
    """`--max-requeues -1` was taken, and every job was then held "gave up after 0 attempts (limit -1)"."""
    done = condor_docker("prepare-job", "--max-requeues", value, stdin="")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done).startswith(f"condor_docker prepare-job: argument --max-requeues: {value!r} is not a "
                                     "whole number from 0")


def test_prepare_job_with_stdin_closed_says_no_job_ad():
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m condor_docker.cli prepare-job <&-'],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == exitcodes.USAGE, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


def test_a_sighup_stops_the_job_like_sigterm(tmp_path):
    """A closed terminal (SIGHUP) must not orphan the container: the job is aborted and the log ends."""
    import signal
    proc = _run_until_started(tmp_path, submit(tmp_path, executable="/bin/sleep", arguments="300"))
    log = tmp_path / "job.log"
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "009 (" in log.read_text(), log.read_text()
    import re

    import docker
    cluster = re.search(r"^001 \((\d+)\.", log.read_text(), re.M).group(1)
    left = docker.from_env().api.containers(all=True, filters={"label": f"org.condor_docker.cluster={cluster}"})
    mine = [c["Names"] for c in left
            if c["Labels"].get("org.condor_docker.scratch_dir", "").startswith(f"/tmp/condor_docker-{cluster}.0-")]
    assert not mine, mine


def test_job_exit_with_a_bogus_option_exits_usage():
    done = condor_docker("job-exit", "--bogus")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done).startswith("condor_docker job-exit: usage: condor_docker job-exit")


def test_job_exit_by_hand_with_no_ad_or_an_unknown_reason_says_so():
    done = condor_docker("job-exit", "exit", stdin="")
    assert done.returncode == exitcodes.USAGE and "no job ad on stdin" in one_line(done)
    not_docker = "ClusterId = 3\nProcId = 0\nJobUniverse = 5\n"
    done = condor_docker("job-exit", "vacate", stdin=not_docker)
    assert done.returncode == exitcodes.USAGE
    assert "unknown reason 'vacate' (the starter gives exit, remove, hold, evict)" in one_line(done)
    done = condor_docker("job-exit", "evict", stdin=not_docker)
    assert (done.returncode, done.stderr) == (0, "")


def test_job_exit_help_is_not_an_error_and_an_empty_socket_is():
    done = condor_docker("job-exit", "-h")
    assert (done.returncode, done.stderr) == (0, "") and "usage: condor_docker job-exit" in done.stdout
    done = condor_docker("job-exit", "--socket=", "exit")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done).startswith("condor_docker job-exit: usage: condor_docker job-exit")


@pytest.mark.parametrize("command", ["launch", "prepare-job", "status", "ssh-shell"])
def test_an_empty_socket_is_refused_not_the_default(command):
    """`--socket=` used to be the default socket, silently, everywhere but job-exit."""
    done = condor_docker(command, "--socket=", stdin="")
    assert done.returncode == exitcodes.USAGE
    assert one_line(done) == (f"condor_docker {command}: argument --socket: an empty path; name the agent's "
                              f"socket, or leave --socket out for the default; "
                              f"`condor_docker {command} --help` lists the options")


def test_ssh_shell_with_a_missing_htcondor_setup_is_unavailable_not_a_bug(tmp_path):
    done = condor_docker("ssh-shell", "--scratch-dir", str(tmp_path), "/nonexistent/setup", "envfile")
    assert done.returncode == 69, done.stderr
    assert "/nonexistent/setup cannot run" in one_line(done)


def test_status_json_is_json_even_when_the_agent_is_down(tmp_path):
    done = condor_docker("status", "--json", "--socket", str(tmp_path / "no-agent.sock"))
    assert done.returncode == exitcodes.UNAVAILABLE
    report = json.loads(done.stdout)
    assert report["ok"] is False and "does not answer" in report["error"]
    assert one_line(done).startswith("condor_docker status: ")


def test_doctor_exits_1_on_any_failure_and_64_on_a_bad_set(tmp_path):
    done = condor_docker("doctor", "--json", "--set", f"CONDOR_DOCKER_ENGINE_URL=unix://{tmp_path}/dead.sock")
    assert done.returncode == 1 and json.loads(done.stdout)["ok"] is False
    done = condor_docker("doctor", "--set", "NOEQUALS")
    assert done.returncode == exitcodes.USAGE and one_line(done).startswith("condor_docker doctor: --set 'NOEQUALS'")


@pytest.mark.parametrize("bad", [["--set", "NOEQUALS"], ["--set", "CONDOR_DOCKER_NO_SUCH_KNOB=1"], ["--bogus"]])
def test_doctor_json_is_json_even_for_a_bad_command_line(bad):
    """`doctor --json --set BAD` printed a plain line: a script reading --json got no JSON."""
    plain = condor_docker("doctor", *bad)
    done = condor_docker("doctor", "--json", *bad)
    assert done.returncode == plain.returncode == exitcodes.USAGE
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["checks"] == [] and report["error"] in one_line(done)


def test_a_bug_is_one_line_and_exit_70(tmp_path):
    """Whatever escapes a subcommand: one line naming where, never a traceback (unless asked for)."""
    code = textwrap.dedent("""
        import sys
        from condor_docker import cli
        from condor_docker.admin import configgen
        def broken(argv):
            raise RuntimeError("boom")
        configgen.main_config = broken
        sys.exit(cli.main(["config"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == exitcodes.INTERNAL == 70
    assert one_line(done).startswith("condor_docker config: internal error: RuntimeError: boom (at ")


def test_a_user_without_the_docker_socket_is_told_what_to_do_at_once(tmp_path, monkeypatch):
    """It used to be retried twice, 5 s apart, then held with subcode 19 and a PermissionError."""
    from condor_docker.core.failures import Code, Failure
    from condor_docker.core.settings import default_settings
    from condor_docker.local import runner

    class NoAccess:
        def version(self):
            raise Failure(Code.ENGINE_UNAVAILABLE, "Docker engine error (connect): PermissionError(13, ...)")

    socket_path = tmp_path / "docker.sock"
    socket_path.write_text("")
    settings = default_settings(CONDOR_DOCKER_ENGINE_URL=f"unix://{socket_path}")
    real_access = os.access
    monkeypatch.setattr(runner.os, "access", lambda path, mode: False if str(path) == str(socket_path)
                        else real_access(path, mode))
    with pytest.raises(runner.Refused) as refused:
        runner._check_engine(settings, NoAccess())
    assert refused.value.exit_code == exitcodes.UNAVAILABLE
    assert "may not use the Docker engine" in str(refused.value) and "docker group" in str(refused.value)
    assert "--user " in str(refused.value)


def test_prepare_job_without_a_job_ad_says_so_instead_of_succeeding(tmp_path):
    """An empty stdin used to exit 0 with nothing printed: HTCondor would read that as "run it unchanged"."""
    done = condor_docker("prepare-job", "--socket", str(tmp_path / "dead.sock"))
    assert done.returncode == exitcodes.USAGE and done.stdout == ""
    assert one_line(done).startswith("condor_docker prepare-job: no job ad on stdin: HTCondor pipes it in")


def test_output_that_cannot_be_written_is_one_line_not_a_traceback():
    """`--version > /dev/full` used to end in a traceback at exit; a closed stdout in a crash."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    env = dict(os.environ, PYTHONPATH=REPO)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "condor_docker.cli", "config", "knob-table"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    assert done.returncode == exitcodes.CANTCREAT
    assert one_line(done) == "condor_docker config: cannot write the output: No space left on device"
    done = subprocess.run([sys.executable, "-m", "condor_docker.cli", "config", "execute"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, env=env,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 0 and done.stderr == ""


def test_no_command_prints_the_usage_on_stderr_and_exits_usage():
    done = condor_docker()
    assert done.returncode == exitcodes.USAGE and done.stdout == "" and "commands for people:" in done.stderr


@pytest.mark.parametrize("argv", [("run", "--state-dir=", "x.sub"), ("prepare-job", "--launcher="), ("agent", "--log=")])
def test_an_empty_path_option_is_a_usage_error_not_its_default(argv):
    done = condor_docker(*argv)
    assert done.returncode == exitcodes.USAGE
    assert f"argument {argv[1].rstrip('=')}: an empty path" in one_line(done)


def test_help_shows_no_empty_or_doubled_defaults():
    done = condor_docker("pool-node", "--help")
    assert done.returncode == 0 and "(default: )" not in done.stdout
    assert not [line for line in done.stdout.splitlines() if "default " in line and "(default: " in line]
