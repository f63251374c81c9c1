"""`condor_docker run` end to end on the real engine, through the examples a user would run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import htcondor2
import pytest
from enginetest import REPO

pytestmark = pytest.mark.engine


@pytest.fixture
def examples(tmp_path, engine):
    work = tmp_path / "examples"
    shutil.copytree(os.path.join(REPO, "examples"), work)
    os.chmod(tmp_path, 0o755)
    return work


def run(examples, submit, *extra, env_extra=None, **kwargs):
    argv = [sys.executable, "-m", "condor_docker.cli", "run", submit, "--retry-delay", "0.5",
            "--state-dir", str(examples / ".state"), *extra]
    env = dict(os.environ, PYTHONPATH=REPO, **(env_extra or {}))
    return subprocess.run(argv, cwd=examples, capture_output=True, text=True, timeout=180, env=env, **kwargs)


def events(path):
    return [(e.type, dict(e.items())) for e in htcondor2.JobEventLog(str(path)).events(stop_after=0)]


def test_hello_writes_output_error_and_event_log(examples, no_leak):
    done = run(examples, "hello.sub")
    assert done.returncode == 0, done.stderr
    out = next(examples.glob("hello.*.0.out")).read_text()
    assert out.startswith("hello from job ") and "uid=65534" in out
    assert next(examples.glob("hello.*.0.err")).read_text() == ""
    kinds = [kind for kind, _ in events(examples / "hello.log")]
    assert kinds == [htcondor2.JobEventType.SUBMIT, htcondor2.JobEventType.EXECUTE,
                     htcondor2.JobEventType.JOB_TERMINATED]
    terminated = events(examples / "hello.log")[-1][1]
    assert terminated["TerminatedNormally"] is True and terminated["ReturnValue"] == 0


def test_transferred_script_and_files(examples, no_leak):
    assert run(examples, "script.sub").returncode == 0
    out = next(examples.glob("script.*.out")).read_text()
    assert "with args: one two words three" in out and "./" not in out.split("\n")[0][:0]
    assert run(examples, "files.sub").returncode == 0
    assert (examples / "counts.txt").read_text().strip() == "3"
    assert (examples / "sorted.txt").read_text().split() == ["docker", "htcondor", "universe"]
    assert next(examples.glob("files.*.out")).read_text().split() == ["DOCKER", "UNIVERSE", "HTCONDOR"]


def test_exit_code_is_the_jobs(examples, no_leak):
    (examples / "three.sub").write_text(
        "universe = docker\ndocker_image = 127.0.0.1:5000/condor-docker-test/busybox:1\n"
        "docker_network_type = none\nexecutable = /bin/sh\ntransfer_executable = false\n"
        "arguments = \"-c 'exit 3'\"\nlog = three.log\nrequest_memory = 32\nqueue\n")
    done = run(examples, "three.sub")
    assert done.returncode == 0 and "exited with code 3" in done.stdout
    assert events(examples / "three.log")[-1][1]["ReturnValue"] == 3


def test_bad_image_is_held_with_the_registrys_reason(examples, no_leak):
    done = run(examples, "bad_image.sub")
    assert done.returncode == 1
    kind, held = events(examples / "bad_image.log")[-1]
    assert kind == htcondor2.JobEventType.JOB_HELD
    assert held["HoldReasonCode"] == 19 and held["HoldReasonSubCode"] == 12
    assert "manifest unknown" in held["HoldReason"]


def test_memory_hog_is_held_with_the_limit(examples, no_leak):
    done = run(examples, "memory_hog.sub")
    assert done.returncode == 1
    kind, held = events(examples / "memory_hog.log")[-1]
    assert kind == htcondor2.JobEventType.JOB_HELD
    assert held["HoldReason"] == "Docker job has gone over memory limit of 64 Mb"
    assert held["HoldReasonSubCode"] == 102


def test_unreachable_registry_is_retried_then_held(examples, no_leak):
    (examples / "unreachable.sub").write_text(
        "universe = docker\ndocker_image = 127.0.0.1:9/nothing:1\nexecutable = /bin/true\n"
        "transfer_executable = false\nlog = unreachable.log\nrequest_memory = 32\nqueue\n")
    done = run(examples, "unreachable.sub", "--set", "CONDOR_DOCKER_MAX_REQUEUES=1")
    assert done.returncode == 1
    kinds = [kind for kind, _ in events(examples / "unreachable.log")]
    assert kinds.count(htcondor2.JobEventType.JOB_EVICTED) == 1      # back to idle once
    held = events(examples / "unreachable.log")[-1][1]
    assert held["HoldReasonSubCode"] == 19 and "connection refused" in held["HoldReason"]


def stalled_registry():
    """A registry that accepts connections and never answers: (its port, the listening socket)."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in range(16)], daemon=True).start()
    return listener.getsockname()[1], listener


def test_ctrl_c_during_a_stalled_pull_removes_the_job_at_once(examples, no_leak):
    """The run used to wait for the pull's stall timeout (and its retries) after Ctrl-C."""
    port, listener = stalled_registry()
    (examples / "stalled.sub").write_text(
        f"universe = docker\ndocker_image = 127.0.0.1:{port}/stalled/image:1\nexecutable = /bin/true\n"
        "transfer_executable = false\nlog = stalled.log\nrequest_memory = 32\nqueue 2\n")
    argv = [sys.executable, "-m", "condor_docker.cli", "run", "stalled.sub", "--state-dir", str(examples / ".state")]
    scratch_root = examples / "scratch-root"     # the run's TMPDIR: where its scratch dirs are made
    scratch_root.mkdir()
    try:
        runner = subprocess.Popen(argv, cwd=examples, env=dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(scratch_root)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        started = time.monotonic()
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=30)
    finally:
        listener.close()
    assert runner.returncode == 130 and time.monotonic() - started < 10, err
    assert out.count("removed: condor_docker run was interrupted before the job started") == 2, out
    kinds = [kind for kind, _ in events(examples / "stalled.log")]
    assert kinds.count(htcondor2.JobEventType.JOB_ABORTED) == 2 and htcondor2.JobEventType.EXECUTE not in kinds
    assert list(scratch_root.iterdir()) == []      # the abandoned pull's scratch dir too


def test_a_stalled_pull_shows_progress_on_the_timer(examples, no_leak):
    """A registry that accepts and never answers used to mean silence until the stall timeout."""
    port, listener = stalled_registry()
    (examples / "stalled.sub").write_text(
        f"universe = docker\ndocker_image = 127.0.0.1:{port}/stalled/image:1\nexecutable = /bin/true\n"
        "transfer_executable = false\nlog = stalled.log\nrequest_memory = 32\nqueue\n")
    try:
        done = run(examples, "stalled.sub", "--set", "CONDOR_DOCKER_PULL_STALL_TIMEOUT=12",
                   "--set", "CONDOR_DOCKER_MAX_REQUEUES=0")
    finally:
        listener.close()
    assert done.returncode == 1
    ticks = [line for line in done.stderr.splitlines() if "waiting for the registry" in line]
    assert len(ticks) >= 2 and ticks[0].endswith(f"pulling 127.0.0.1:{port}/stalled/image:1: "
                                                 "waiting for the registry, 5 s"), done.stderr


def test_interrupt_kills_the_job_and_reports_the_signal(examples, engine, no_leak):
    (examples / "long.sub").write_text(
        "universe = docker\ndocker_image = 127.0.0.1:5000/condor-docker-test/busybox:1\n"
        "docker_network_type = none\nexecutable = /bin/sh\ntransfer_executable = false\n"
        "arguments = \"-c 'sleep 120'\"\nlog = long.log\nrequest_memory = 32\nqueue\n")
    argv = [sys.executable, "-m", "condor_docker.cli", "run", "long.sub", "--state-dir", str(examples / ".state")]
    runner = subprocess.Popen(argv, cwd=examples, env=dict(os.environ, PYTHONPATH=REPO),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # this run's own execute event, not any container on the shared engine (another run's would do)
    log = examples / "long.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "\n001 (" in "\n" + log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert log.exists() and "\n001 (" in "\n" + log.read_text(), "the job never started"
    time.sleep(1.0)
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=30)
    assert "removed: condor_docker run was interrupted (killed by signal 15)" in out
    assert "stopping job " in err and "Ctrl-C again to kill it now" in err
    assert runner.returncode == 130
    # as condor_rm: an aborted event, whether the job had started or not (it used to be 005 or a 306 hold)
    kinds = [kind for kind, _ in events(examples / "long.log")]
    assert kinds[-1] == htcondor2.JobEventType.JOB_ABORTED


def test_bad_submit_file_names_the_problem(examples):
    (examples / "vanilla.sub").write_text("executable = /bin/true\nqueue\n")
    done = run(examples, "vanilla.sub")
    assert done.returncode == 2 and "universe = docker" in done.stderr


IMAGE_LINES = ("universe = docker\ndocker_image = 127.0.0.1:5000/condor-docker-test/busybox:1\n"
               "docker_network_type = none\nexecutable = /bin/sh\ntransfer_executable = false\nrequest_memory = 32\n")


def test_max_retries_runs_again_then_leaves_the_queue(examples, no_leak):
    (examples / "retry.sub").write_text(
        IMAGE_LINES + "arguments = \"-c 'echo run >> runs.txt; exit 1'\"\ntransfer_output_files = runs.txt\n"
        "transfer_input_files = runs.txt\nmax_retries = 2\nlog = retry.log\nqueue\n")
    (examples / "runs.txt").write_text("")
    done = run(examples, "retry.sub")
    assert done.returncode == 0, done.stderr
    kinds = [kind for kind, _ in events(examples / "retry.log")]
    E = htcondor2.JobEventType
    assert kinds == [E.SUBMIT, E.EXECUTE, E.JOB_EVICTED, E.EXECUTE, E.JOB_EVICTED, E.EXECUTE, E.JOB_TERMINATED]
    evicted = events(examples / "retry.log")[2][1]
    assert evicted["TerminatedAndRequeued"] is True and evicted["ReturnValue"] == 1
    assert "OnExitRemove" in evicted["Reason"]
    # outputs come back at every exit and go in again with the next run, as in HTCondor: three runs
    assert (examples / "runs.txt").read_text() == "run\nrun\nrun\n"


def test_on_exit_hold_holds_with_the_users_reason(examples, no_leak):
    (examples / "hold.sub").write_text(
        IMAGE_LINES + "arguments = \"-c 'exit 3'\"\non_exit_hold = ExitCode == 3\n"
        "on_exit_hold_reason = \"exit 3 means bad input\"\non_exit_hold_subcode = 33\nlog = hold.log\nqueue\n")
    done = run(examples, "hold.sub")
    assert done.returncode == 1 and "exit 3 means bad input" in done.stdout
    kind, held = events(examples / "hold.log")[-1]
    assert kind == htcondor2.JobEventType.JOB_HELD
    assert (held["HoldReason"], held["HoldReasonCode"], held["HoldReasonSubCode"]) == ("exit 3 means bad input", 3, 33)


def test_periodic_remove_stops_a_running_job(examples, no_leak):
    (examples / "periodic.sub").write_text(
        IMAGE_LINES + "arguments = \"-c 'sleep 60'\"\nperiodic_remove = RemoteWallClockTime > 1\n"
        "log = periodic.log\nqueue\n")
    started = time.monotonic()
    done = run(examples, "periodic.sub", "--periodic-interval", "1")
    assert time.monotonic() - started < 40
    assert "removed: The job attribute PeriodicRemove expression 'RemoteWallClockTime > 1' evaluated to TRUE" in done.stdout
    kind, aborted = events(examples / "periodic.log")[-1]
    assert kind == htcondor2.JobEventType.JOB_ABORTED and "PeriodicRemove" in aborted["Reason"]


def test_remaps_and_getenv(examples, no_leak):
    (examples / "remap.sub").write_text(
        IMAGE_LINES + "arguments = \"-c 'echo $CD_FROM_SUBMITTER > out.txt'\"\ngetenv = CD_FROM_SUBMITTER\n"
        "transfer_output_files = out.txt\ntransfer_output_remaps = \"out.txt = renamed.txt\"\nqueue\n")
    done = run(examples, "remap.sub", env_extra={"CD_FROM_SUBMITTER": "hello-env"})
    assert done.returncode == 0, done.stderr
    assert (examples / "renamed.txt").read_text().strip() == "hello-env" and not (examples / "out.txt").exists()


def test_refused_and_misspelled_commands_say_so(examples):
    (examples / "refused.sub").write_text(IMAGE_LINES + "periodic_release = true\nqueue\n")
    done = run(examples, "refused.sub")
    assert done.returncode == 2 and "periodic_release: refused by condor_docker run" in done.stderr
    (examples / "gpu.sub").write_text(IMAGE_LINES + "request_gpus = 64\nqueue\n")
    done = run(examples, "gpu.sub")
    assert done.returncode == 2 and "request_gpus = 64" in done.stderr


def test_near_miss_warns_and_still_runs(examples, no_leak):
    (examples / "typo.sub").write_text(IMAGE_LINES.replace("docker_network_type", "docker_netwrk_type")
                                       + "arguments = \"-c true\"\nqueue\n")
    done = run(examples, "typo.sub", "--set", "CONDOR_DOCKER_DEFAULT_NETWORK=none")
    assert "did you mean docker_network_type?" in done.stderr and done.returncode == 0, done.stderr
PEAK_AT_THE_END = """\
universe              = docker
docker_image          = 127.0.0.1:5000/condor-docker-test/busybox:1
docker_network_type   = none
executable            = /bin/sh
transfer_executable   = false
arguments             = "-c 'i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done; head -c 80m /dev/zero | tail > /dev/null; kill -SEGV $$'"
log                   = peak.log
request_memory        = 256M
request_disk          = 10M
queue
"""


def test_event_log_has_the_containers_cpu_peak_memory_and_signal(examples, no_leak):
    """The peak falls in the job's last instant, after the engine's last 1 s sample (run as root)."""
    (examples / "peak.sub").write_text(PEAK_AT_THE_END)
    done = run(examples, "peak.sub")
    assert done.returncode == 0, done.stderr
    terminated = events(examples / "peak.log")[-1][1]
    assert terminated["TerminatedBySignal"] == 11, terminated
    assert terminated["MemoryUsage"] >= 80, terminated
    assert terminated["DiskUsage"] >= 0, terminated
    remote = terminated["RunRemoteUsage"]
    assert "Usr 0 00:00:00" not in remote, terminated   # whole seconds: the loop burns > 1 s
    parent = "/sys/fs/cgroup/memory/condor_docker"
    left = [d for d in (os.listdir(parent) if os.path.isdir(parent) else [])
            if ".run" in d and os.path.isdir(os.path.join(parent, d))]
    assert left == [], f"the runner left its usage cgroups: {left}"
