"""An emulated condor_starter, per docs/HTCONDOR-CONTRACT.md, for end-to-end hook tests.

It does what the real starter does around a job, in the same order and with
the same rules (read from HTCondor's StarterHookMgr and OsProc):

1. PREPARE_JOB: `<hook path> <_ARGS...>` as the job's user, cwd = scratch dir,
   the job ad on stdin.  `HookStatusCode` in its output overrides the exit
   status; 1..299 holds the job (HoldReasonCode 19, subcode = status), any
   other failure sends it back to idle; on success every `Attr = Value` line
   is merged into the starter's copy of the job ad (.job.ad keeps the original).
2. The job process: Cmd + Arguments from the merged ad.  A transferred
   executable (TransferExecutable, default true) runs as <scratch>/<basename
   of Cmd>; a relative Cmd is relative to the IWD.  As the job's user, cwd =
   scratch, the starter's environment, stdout/stderr into _condor_stdout /
   _condor_stderr.  condor_rm = SIGTERM, then SIGKILL after the vacate time.
3. JOB_EXIT: `<hook path> <exit|remove>` with the merged ad plus ExitCode,
   ExitBySignal, JobState on stdin; its output and status are ignored.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import classad2
from testpaths import CODE_PATH

from condor_docker.core.ads import format_ad_lines
from condor_docker.core.arguments import parse_args_v1, parse_args_v2, parse_env_v2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/opt/condor_docker/venv/bin/python"
HOLD_CODE_HOOK_PREPARE_JOB_FAILURE = 19   # HTCondor's CONDOR_HOLD_CODE::HookPrepareJobFailure


def install_entry_points(directory: str) -> tuple[str, str]:
    """Root-owned 0755 stand-ins for the installed console scripts, running this checkout.

    (`condor_docker`, `condor_docker_job_exit`); HTCondor refuses hook paths that
    are world-writable or in a world-writable directory, so we keep them 0755.
    """
    os.makedirs(directory, 0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    scripts = {
        "condor_docker": f'exec {PYTHON} -m condor_docker.cli "$@"',
        "condor_docker_job_exit": (f"exec {PYTHON} -c 'import sys; from condor_docker.starter.job_exit import "
                                   f"job_exit_entry; sys.exit(job_exit_entry())' \"$@\""),
    }
    paths = []
    for name, body in scripts.items():
        path = os.path.join(directory, name)
        with open(path, "w") as stream:
            stream.write(f"#!/bin/sh\nPYTHONPATH={CODE_PATH}\nexport PYTHONPATH\n{body}\n")
        os.chmod(path, 0o755)
        paths.append(path)
    return paths[0], paths[1]


@dataclass(frozen=True)
class StarterConfig:
    """What the execute point's config.d says (see condor_docker/core/configfiles.py)."""
    prepare_hook: str                  # <KEYWORD>_HOOK_PREPARE_JOB
    prepare_hook_args: str             # <KEYWORD>_HOOK_PREPARE_JOB_ARGS (V2 syntax)
    job_exit_hook: str                 # <KEYWORD>_HOOK_JOB_EXIT (gets only the reason)
    host: str = "vm"
    slot: str = "slot1_1"
    hook_timeout: float = 600.0


@dataclass
class Outcome:
    """What the schedd would see, plus what the tests want to look at."""
    state: str                          # "held", "idle", "completed", "removed"
    hold_reason_code: int | None = None
    hold_reason_subcode: int | None = None
    hold_reason: str | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    hook_stdout: str = ""
    hook_stderr: str = ""
    job_exit_stderr: str = ""
    merged_ad: classad2.ClassAd | None = field(default=None, repr=False)
    argv: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{self.state} code={self.hold_reason_code}/{self.hold_reason_subcode} reason={self.hold_reason!r} "
                f"exit={self.exit_code} signal={self.exit_signal}\nhook stdout: {self.hook_stdout}\n"
                f"hook stderr: {self.hook_stderr[-2000:]}\njob stdout: {self.stdout[-2000:]}\n"
                f"job stderr: {self.stderr[-2000:]}\njob-exit stderr: {self.job_exit_stderr[-1000:]}")


@dataclass
class Starter:
    config: StarterConfig
    uid: int
    gid: int

    # ------------------------------------------------------------ the three steps

    def run(self, scratch: str, *, remove_after: float | None = None, vacate_time: float = 10.0,
            extra_env: dict[str, str] | None = None, job_timeout: float = 300.0) -> Outcome:
        """Run one job in `scratch` (which holds .job.ad and .machine.ad) through hooks and launcher."""
        with open(os.path.join(scratch, ".job.ad")) as stream:
            original_text = stream.read()
        job_ad = classad2.parseOne(original_text)
        outcome, merged = self.prepare(scratch, original_text, job_ad)
        if merged is None:
            return outcome
        removed = self.launch(scratch, merged, outcome, remove_after, vacate_time, extra_env, job_timeout)
        outcome.state = "removed" if removed else "completed"
        outcome.merged_ad = merged
        self.job_exit(scratch, merged, outcome, "remove" if removed else "exit")
        return outcome

    def prepare(self, scratch: str, stdin_text: str,
                job_ad: classad2.ClassAd) -> tuple[Outcome, classad2.ClassAd | None]:
        argv = [self.config.prepare_hook, *parse_args_v2(self.config.prepare_hook_args)]
        proc = self._run_as(argv, scratch, stdin_text, self.hook_env(), self.config.hook_timeout)
        outcome = Outcome(state="idle", hook_stdout=proc.stdout, hook_stderr=proc.stderr, argv=argv)
        update = classad2.parseOne(proc.stdout) if proc.stdout.strip() else classad2.ClassAd()
        status, status_text = self._hook_status(proc.returncode, update)
        message = update.get("HookStatusMessage") if isinstance(update.get("HookStatusMessage"), str) else ""
        log_text = (f"PREPARE_JOB ({os.path.basename(self.config.prepare_hook)}) "
                    f"{'failed' if status else 'succeeded'} ({status_text}): {message or '<no message>'}")
        if status != 0:
            if 0 < status < 300:
                outcome.state = "held"
                outcome.hold_reason_code = HOLD_CODE_HOOK_PREPARE_JOB_FAILURE
                outcome.hold_reason_subcode = status
                outcome.hold_reason = f"Error from {self.config.slot}@{self.config.host}: {log_text}"
            else:
                outcome.state = "idle"       # shadow exception: back to idle, matched again
                outcome.hold_reason = f"Error from starter on {self.config.slot}@{self.config.host}: {log_text}"
            return outcome, None
        merged = classad2.parseOne(stdin_text)
        merged.update(update)
        return outcome, merged

    @staticmethod
    def _hook_status(returncode: int, update: classad2.ClassAd) -> tuple[int, str]:
        """HTCondor's rule: a signal wins, else HookStatusCode (if an integer >= 0), else the exit code."""
        if returncode < 0:
            return returncode, f"died on signal {-returncode}"
        reported = update.get("HookStatusCode")
        if isinstance(reported, int) and not isinstance(reported, bool) and reported >= 0:
            return reported, f"reported status {reported:03d}"
        return returncode, f"exited with status {returncode}"

    def launch(self, scratch: str, merged: classad2.ClassAd, outcome: Outcome, remove_after: float | None,
               vacate_time: float, extra_env: dict[str, str] | None, job_timeout: float) -> bool:
        """Run the job process; True when it was removed (condor_rm) rather than exiting by itself."""
        argv = [self.executable(scratch, merged), *self.arguments(merged)]
        outcome.argv = argv
        out_path, err_path = (os.path.join(scratch, name) for name in ("_condor_stdout", "_condor_stderr"))
        for path in (out_path, err_path):
            with open(path, "w"):
                pass
            os.chown(path, self.uid, self.gid)
        env = self.job_env(scratch, merged, extra_env)
        with open(out_path, "wb") as out, open(err_path, "wb") as err, open(os.devnull, "rb") as null:
            process = subprocess.Popen(argv, cwd=scratch, env=env, stdin=null, stdout=out, stderr=err,
                                       user=self.uid, group=self.gid, extra_groups=[], start_new_session=True)
            removed = self._wait(process, remove_after, vacate_time, job_timeout)
        if process.returncode < 0:
            outcome.exit_signal = -process.returncode
        else:
            outcome.exit_code = process.returncode
        with open(out_path, errors="replace") as stream:
            outcome.stdout = stream.read()
        with open(err_path, errors="replace") as stream:
            outcome.stderr = stream.read()
        return removed

    @staticmethod
    def _wait(process: subprocess.Popen, remove_after: float | None, vacate_time: float,
              job_timeout: float) -> bool:
        removed = False
        if remove_after is not None:
            try:
                process.wait(timeout=remove_after)
            except subprocess.TimeoutExpired:
                removed = True
                process.send_signal(signal.SIGTERM)          # the starter's soft kill
                try:
                    process.wait(timeout=vacate_time)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)   # the hard kill, to the whole family
        try:
            process.wait(timeout=job_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            raise
        return removed

    def job_exit(self, scratch: str, merged: classad2.ClassAd, outcome: Outcome, reason: str) -> None:
        exit_ad = classad2.parseOne(merged.printOld())
        exit_ad.update(classad2.parseOne(format_ad_lines({
            "ExitBySignal": outcome.exit_signal is not None,
            "ExitCode": outcome.exit_code if outcome.exit_code is not None else 0,
            "JobState": "Exited",
            **({"ExitSignal": outcome.exit_signal} if outcome.exit_signal is not None else {}),
        })))
        proc = self._run_as([self.config.job_exit_hook, reason], scratch, exit_ad.printOld(),
                            self.hook_env(), 30.0)
        outcome.job_exit_stderr = proc.stderr

    # ------------------------------------------------------------ what the starter computes

    def executable(self, scratch: str, ad: classad2.ClassAd) -> str:
        """OsProc's rule for the path it execs (file transfer is on, as in the real pool)."""
        cmd = str(ad.eval("Cmd"))
        transfer = ad.eval("TransferExecutable") if "TransferExecutable" in ad else True
        if transfer is True:
            return os.path.join(scratch, os.path.basename(cmd))
        if not os.path.isabs(cmd):
            return os.path.join(scratch, cmd)
        return cmd

    @staticmethod
    def arguments(ad: classad2.ClassAd) -> list[str]:
        if "Arguments" in ad:
            return parse_args_v2(str(ad.eval("Arguments")))
        if "Args" in ad:
            return parse_args_v1(str(ad.eval("Args")))
        return []

    def hook_env(self) -> dict[str, str]:
        """Hooks get the starter's published env; nothing says _CONDOR_SCRATCH_DIR is there."""
        return {"PATH": "/usr/bin:/bin", "_CONDOR_SLOT": self.config.slot}

    def job_env(self, scratch: str, ad: classad2.ClassAd, extra: dict[str, str] | None) -> dict[str, str]:
        env = {}
        if "Environment" in ad:
            env.update(parse_env_v2(str(ad.eval("Environment"))))
        env.update({
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "BATCH_SYSTEM": "HTCondor",
            "_CONDOR_SCRATCH_DIR": scratch,
            "_CONDOR_JOB_AD": os.path.join(scratch, ".job.ad"),
            "_CONDOR_MACHINE_AD": os.path.join(scratch, ".machine.ad"),
            "_CONDOR_JOB_IWD": scratch,
            "_CONDOR_SLOT": self.config.slot,
            "_CONDOR_CHIRP_CONFIG": os.path.join(scratch, ".chirp.config"),
            "_CHIRP_DELAYED_UPDATE_PREFIX": "Chirp*",
            "CONDOR_STARTER_PID": str(os.getpid()),
            "TMPDIR": "/tmp", "TMP": "/tmp", "TEMP": "/tmp",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "GOMAXPROCS": "1", "PYTHON_CPU_COUNT": "1",
        })
        env.update(extra or {})
        return env

    def _run_as(self, argv: list[str], cwd: str, stdin_text: str, env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=cwd, env=env, input=stdin_text, capture_output=True, text=True,
                              timeout=timeout, user=self.uid, group=self.gid, extra_groups=[])


def run_in_background(starter: Starter, scratch: str, **kwargs) -> tuple[threading.Thread, list[Outcome]]:
    """Start starter.run in a thread (for tests that act while the job runs)."""
    results: list[Outcome] = []
    thread = threading.Thread(target=lambda: results.append(starter.run(scratch, **kwargs)), daemon=True)
    thread.start()
    return thread, results


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
