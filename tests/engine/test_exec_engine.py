"""condor_ssh_to_job's exec on the real engine: the command runs as the job's uid:gid, never root.

The agent's exec op (agent/exec_op.py) takes the user from the container's own
Config.User as the engine reports it, checks it is the peer's uid and not root
(check_exec_user), and creates the exec with that user (engine/client.py
exec_create). This runs those same steps on each engine, and reads what the
exec'd process itself is: its uid, gid and groups, its capabilities and
no-new-privileges, its working dir.
"""
from __future__ import annotations

import signal
import threading
import time

import pytest
from test_lifecycle import image_present, make_spec  # noqa: F401 -- the autouse fixture too

from condor_docker.agent.exec_op import check_exec_user
from condor_docker.core.failures import Code, Failure
from condor_docker.engine.lifecycle import ContainerRun, JobIO
from condor_docker.engine.streams import frames

pytestmark = pytest.mark.engine


@pytest.fixture
def running(engine, scratch, job_user, tmp_path, no_leak):
    """A job's container, running until the test ends: (container id, inspect document)."""
    _, container = make_spec(scratch, job_user, "-c 'echo up; sleep 60'")
    created: dict = {}
    out, err = open(tmp_path / "out", "wb"), open(tmp_path / "err", "wb")
    job = ContainerRun(engine, container, JobIO(out.fileno(), err.fileno(), None), kill_grace=2,
                       on_created=lambda container_id: created.setdefault("id", container_id))
    results: list = []
    thread = threading.Thread(target=lambda: results.append(job.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = engine.inspect(created["id"]) if "id" in created else None
        if state is not None and state.running:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the job's container did not start: {results}")
    try:
        yield created["id"], engine.inspect_details(created["id"])
    finally:
        job.stop(signal.SIGKILL, 0)
        thread.join(30)
        out.close()
        err.close()
    assert results and results[0].signal == signal.SIGKILL, results


def _exec(engine, container_id, user, workdir, argv, tty=False) -> tuple[int, bytes]:
    """What the exec op does, minus the agent socket: create, attach, read to the end, exit code."""
    exec_id = engine.exec_create(container_id, argv, user=user, workdir=workdir, tty=tty,
                                 environment={"TERM": "xterm"} if tty else {}, name="exec-test")
    stream = engine.exec_attach(exec_id, tty, "exec-test")
    try:
        if tty:
            raw, chunks = getattr(stream, "_sock", stream), []
            while data := raw.recv(65536):
                chunks.append(data)
            output = b"".join(chunks)
        else:
            output = b"".join(data for _, data in frames(stream))
    finally:
        stream.close()
    deadline = time.monotonic() + 5
    while (state := engine.exec_inspect(exec_id)).get("Running") and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(state.get("ExitCode")), output


def test_an_exec_runs_as_the_job_uid_and_gid_never_root(engine, running, job_user, scratch):
    container_id, details = running
    uid, gid = job_user
    config = details["Config"]
    assert config["User"] == f"{uid}:{gid}"                 # as this engine reports it
    user = check_exec_user(uid, details["Name"], config["User"])
    with pytest.raises(Failure) as refused:
        check_exec_user(0, details["Name"], config["User"])   # only the job's own uid, and never root
    assert refused.value.code is Code.POLICY_REFUSED

    code, output = _exec(engine, container_id, user, config.get("WorkingDir") or None,
                         ["sh", "-c", "id -u; id -g; id -G; pwd; grep -E '^(CapEff|CapBnd|NoNewPrivs)' "
                                      "/proc/self/status"])
    lines = output.decode().splitlines()
    assert code == 0, output
    assert lines[:4] == [str(uid), str(gid), str(gid), scratch], output
    status = dict(line.split(":\t") for line in lines[4:])
    assert status == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}, output


def test_an_exec_with_a_terminal_runs_as_the_job_uid(engine, running, job_user):
    container_id, details = running
    user = check_exec_user(job_user[0], details["Name"], details["Config"]["User"])
    code, output = _exec(engine, container_id, user, None, ["sh", "-c", "id -u; tty; exit 3"], tty=True)
    lines = output.decode().replace("\r", "").splitlines()
    assert code == 3, output
    assert lines[0] == str(job_user[0]) and lines[1].startswith("/dev/pts/"), output
