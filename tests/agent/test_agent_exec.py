"""`condor_docker ssh-shell` and the agent's `exec` op on the real engine, as real job users.

A job runs through the real launcher; the ssh-shell client then runs as the
job's user the way sshd would run it (SSH_ORIGINAL_COMMAND, pipes or a pty),
and must land in the container: the job's uid, its working dir, a file only
the container has.  cdtest2 must not reach cdtest1's container.
"""
from __future__ import annotations

import os
import pty
import select
import struct
import subprocess
import time

import pytest
from testpaths import CODE_PATH

pytestmark = [pytest.mark.root, pytest.mark.engine]

PYTHON = "/opt/condor_docker/venv/bin/python"


@pytest.fixture
def running_job(agent, make_scratch, start_launcher, real_job_ad, wait_until, test_users):
    """A cdtest1 job sleeping in its container; yields (scratch, container name); ends it after."""
    scratch = make_scratch("cdtest1", real_job_ad(Arguments="-c 'echo only-in-container > /tmp/marker; "
                                                            "touch marker-written; sleep 300'",
                                                  JobMaxVacateTime=1))
    job = start_launcher(agent, scratch)

    def started():
        jobs = [j for j in agent.call("status")["jobs"] if j["container_id"]]
        return jobs[0]["container"] if jobs else None
    name = wait_until(started, 60, "the job's container runs")
    # /tmp is the container's own tmpfs: the host sees only the job's note in the scratch dir
    wait_until(lambda: os.path.exists(os.path.join(scratch, "marker-written")), 30, "the job wrote its marker")
    yield scratch, name
    job.process.terminate()
    job.wait(30)


def ssh_shell(run_as, agent, scratch, user="cdtest1", command=None, stdin=b"", **kwargs):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": CODE_PATH}
    if command is not None:
        env["SSH_ORIGINAL_COMMAND"] = command
    process = run_as(user, [PYTHON, "-m", "condor_docker.cli", "ssh-shell", "--socket", agent.socket,
                            "--scratch-dir", scratch], env=env, cwd="/", stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    out, err = process.communicate(stdin, timeout=60)
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def test_command_runs_in_the_container_as_the_job(agent, running_job, run_as, test_users):
    scratch, name = running_job
    code, out, err = ssh_shell(run_as, agent, scratch, command="id -u; id -g; pwd; cat /tmp/marker; "
                                                               "test -f /.dockerenv && echo in-docker; exit 7")
    uid, gid = test_users["cdtest1"]
    assert code == 7, err
    assert out.split("\n")[:5] == [str(uid), str(gid), scratch, "only-in-container", "in-docker"]
    line = [l for l in agent.log_text().splitlines() if "op=exec" in l][-1]
    assert f"container={name}" in line and "result=ok" in line and "exit=7" in line


def test_shell_reads_commands_from_stdin_and_stderr_stays_apart(agent, running_job, run_as):
    scratch, _ = running_job
    code, out, err = ssh_shell(run_as, agent, scratch, stdin=b"echo to-out; echo to-err >&2; hostname\n")
    assert code == 0, err
    assert out.startswith("to-out\n") and "to-err" not in out
    assert "to-err" in err


def test_stdin_reaches_the_command_and_ends(agent, running_job, run_as):
    scratch, _ = running_job
    payload = os.urandom(300_000)
    code, _, err = ssh_shell(run_as, agent, scratch, command="cat > copied.bin", stdin=payload)
    assert code == 0, err
    with open(os.path.join(scratch, "copied.bin"), "rb") as stream:
        assert stream.read() == payload


def test_interactive_shell_gets_a_terminal_of_the_right_size(agent, running_job, run_as):
    scratch, _ = running_job
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("4H", 33, 101, 0, 0))
    os.chown(os.ttyname(slave), *_ids(run_as))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": CODE_PATH, "TERM": "xterm"}
    process = run_as("cdtest1", [PYTHON, "-m", "condor_docker.cli", "ssh-shell", "--socket", agent.socket,
                                 "--scratch-dir", scratch], env=env, cwd="/", stdin=slave, stdout=slave,
                     stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        os.write(master, b"stty size; tty; echo $TERM; exit 5\n")
        seen = _read_until_exit(master, process)
    except BaseException:
        process.kill()
        raise
    finally:
        os.close(master)
    assert process.returncode == 5, seen
    assert "33 101" in seen and "/dev/pts/" in seen and "xterm" in seen


def _ids(run_as):
    import pwd
    entry = pwd.getpwnam("cdtest1")
    return entry.pw_uid, entry.pw_gid


def _read_until_exit(master: int, process: subprocess.Popen, timeout: float = 30) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    else:
        raise AssertionError(f"the session did not end; it showed {seen!r}")
    process.wait(10)
    return seen.decode(errors="replace")


def test_missing_sftp_server_and_rsync_fail_with_a_clear_line(agent, running_job, run_as):
    scratch, _ = running_job
    # sshd drops a subsystem's stderr, so the reason comes back as SFTP status replies
    init = struct.pack(">IBI", 5, 1, 3)
    realpath = struct.pack(">IBII", 10, 16, 7, 1) + b"."
    code, out, err = ssh_shell(run_as, agent, scratch, command="internal-sftp", stdin=init + realpath)
    assert code == 1, err
    raw = out.encode(errors="surrogateescape") if isinstance(out, str) else out
    assert b"image has no sftp-server" in raw and b"cat > FILE" in raw
    code, _, err = ssh_shell(run_as, agent, scratch, command="rsync --server -e.LsfxC . dest/")
    assert code == 127 and "rsync needs rsync in the job's image" in err


def test_another_user_cannot_enter_the_container(agent, running_job, run_as):
    # cdtest2 cannot even read cdtest1's scratch dir, so it talks to the agent directly, with its fds.
    scratch, name = running_job
    probe = ("import json, sys; from condor_docker.wire.protocol import AgentClient; "
             f"print(json.dumps(list(AgentClient({agent.socket!r}).stream('exec', fds=[0, 1, 2], "
             f"scratch_dir={scratch!r}, argv=['id', '-u']))))")
    process = run_as("cdtest2", [PYTHON, "-c", probe], env={"PYTHONPATH": CODE_PATH}, cwd="/",
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=60)
    import json
    replies = json.loads(out)
    assert [r.get("ok") for r in replies] == [False], replies
    assert "no running container of uid" in replies[0]["failure"]["reason"]
    line = [l for l in agent.log_text().splitlines() if "op=exec" in l][-1]
    assert "result=failed" in line
    code, out, err = ssh_shell(run_as, agent, scratch, user="cdtest2", command="id -u")
    assert code == 69 and out == ""  # and the client run as cdtest2 does not find a docker job there


def test_no_container_for_a_scratch_dir_is_a_clear_refusal(agent, make_scratch, run_as):
    scratch = make_scratch("cdtest1")
    code, out, err = ssh_shell(run_as, agent, scratch, command="true")
    assert code == 69
    assert "no running container of uid" in err and scratch in err


def test_exec_op_refuses_root_and_bad_requests(agent, running_job):
    scratch, _ = running_job
    reply = agent.call("exec", scratch_dir=scratch, argv=["id"])   # root, and no fds
    assert not reply["ok"] and "root may only manage" in reply["failure"]["reason"]
