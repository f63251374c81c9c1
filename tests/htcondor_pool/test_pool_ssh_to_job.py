"""condor_ssh_to_job on a real pool lands inside the job's container, as the job's user.

The real starter runs its sshd (as the job's user) with the template the agent
wrote beside its socket; every session goes through `condor_docker ssh-shell`
and the agent's `exec`.  The test image (busybox) has sh and tar but no
sftp-server, scp or rsync: those must fail with a line that names what is
missing and how to copy instead.
"""
from __future__ import annotations

import os
import pwd
import subprocess

import pytest
from poolfixture import REGISTRY_IMAGE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SLEEPER = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'echo only-in-the-container > /tmp/marker; sleep 600'"
transfer_executable = false
output = out.txt
error = err.txt
log = job.log
request_memory = 64
queue
"""


@pytest.fixture(scope="module")
def ssh_tools(pool):
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "ssh-deps.sh")], capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"cannot install openssh-server/openssh-client: {result.stderr[-1500:]}")
    template = pool.condor("condor_config_val", "SSH_TO_JOB_SSHD_CONFIG_TEMPLATE").stdout.strip()
    assert template == os.path.join(os.path.dirname(pool.agent_socket), "ssh_to_job_sshd_config_template")
    with open(template) as stream:
        assert f"ssh-shell --socket {pool.agent_socket} _INSERT_FORCE_COMMAND_" in stream.read()
    return template


RUNNING = 2
SUBMIT_ATTEMPTS = 3
SLOT_PREFIX = "sshtojob"
PREFIX_CONFIG = "95-ssh-to-job-slot-prefix.conf"


@pytest.fixture(scope="module")
def own_slot_names(pool):
    """Slots named sshtojob1_1, so our containers are HTCJob_<c>_<p>_sshtojob1_1.

    Other pools on this shared engine name theirs HTCJob_<cluster>_<proc>_slot1_1 with
    the same small cluster numbers and the same test user; a same-named container is
    removed as a leftover (create) or by their JOB_EXIT cleanup (cluster/proc/slot/uid
    filters). Agents of other sessions that predate the reaper's execute-dir filter also
    removed our containers while these tests were written (reported to the lead).
    """
    pool.write_config(PREFIX_CONFIG, f"STARTD_RESOURCE_PREFIX = {SLOT_PREFIX}\n")
    pool.restart_startd(SLOT_PREFIX)
    yield
    pool.remove_config(PREFIX_CONFIG)
    pool.restart_startd("slot")


@pytest.fixture
def sleeping_job(pool, ssh_tools, own_slot_names, pool_job_user):
    """A running sleeper whose container answers condor_ssh_to_job.

    A sleeper that ends before it ever answered (another pool on the shared engine may
    still interfere) is resubmitted, at most twice, and each loss is printed.
    """
    lost: list[str] = []
    for _ in range(SUBMIT_ATTEMPTS):
        job = pool.submit(SLEEPER, user=pool_job_user)
        try:
            if _answers(pool, job):
                yield job
                return
            ad = pool.ad(job)
            lost.append(f"job {job.cluster}.0 ended before answering: JobStatus={ad.get('JobStatus')} "
                        f"ExitCode={ad.get('ExitCode')} HoldReason={ad.get('HoldReason')!r} "
                        f"HoldReasonSubCode={ad.get('HoldReasonSubCode')}")
            print(lost[-1])
        finally:
            pool.rm(job)
    raise AssertionError(f"no sleeper answered: {lost}\n--- agent log:\n{pool.agent_log()[-3000:]}")


def _answers(pool, job) -> bool:
    """True once the job's container answers; False when the job stops running first."""
    pool.wait(job, "running", timeout=120)
    tries: list[subprocess.CompletedProcess] = []

    def settled() -> str | None:
        if pool.ad(job).get("JobStatus") != RUNNING:
            return "stopped"
        tries.append(ssh(pool, job, "cat /tmp/marker", check=False))
        return "answers" if tries[-1].returncode == 0 else None
    try:
        return pool.wait_for(settled, 60, "the job's container answers condor_ssh_to_job") == "answers"
    except AssertionError as err:
        raise AssertionError(f"{err}; last try: {tries[-1] if tries else None}\n--- agent log:\n"
                             f"{pool.agent_log()[-3000:]}\n--- starter log:\n{pool.starter_logs()[-3000:]}") from None


def ssh(pool, job, *command: str, input: str | bytes = "", check: bool = True,
        tool: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """condor_ssh_to_job -auto-retry [tool] JOB [command], as the job's user (stdin: `input`, never ours)."""
    result = pool.condor("condor_ssh_to_job", "-auto-retry", *tool, f"{job.cluster}.0", *command,
                         user=job.user, check=False, timeout=120, input=input)
    if check and result.returncode not in (0,):
        raise AssertionError(f"condor_ssh_to_job {' '.join(command)} failed ({result.returncode}): "
                             f"{result.stdout!r} {result.stderr!r}\n--- agent log:\n{pool.agent_log()[-3000:]}")
    return result


def test_shell_command_and_copies_land_in_the_container(pool, sleeping_job):
    """One job for all three (each job is a chance for other pools on this engine to collide by name)."""

    # condor_ssh_to_job JOB command: the job's uid, working dir, the container's files, exit code
    result = ssh(pool, sleeping_job, "id -u; pwd; cat /tmp/marker; test -f /.dockerenv && echo in-docker; "
                                     "echo to-stderr >&2; exit 3", check=False)
    assert result.returncode == 3, result.stderr
    uid, cwd, marker, docker = result.stdout.splitlines()[:4]
    assert uid == str(pwd.getpwnam(sleeping_job.user).pw_uid)
    assert cwd.startswith(pool.execute_dir + "/dir_")           # the job's working dir (its scratch dir)
    assert (marker, docker) == ("only-in-the-container", "in-docker")
    assert "to-stderr" in result.stderr and "to-stderr" not in result.stdout
    log = [line for line in pool.agent_log().splitlines() if "op=exec" in line]
    assert log and f"job={sleeping_job.cluster}.0 " in log[-1] and "exit=3" in log[-1]
    owner_uid = pwd.getpwnam(sleeping_job.user).pw_uid   # the container's name carries its owner's uid
    slot = str(pool.ad(sleeping_job).get("RemoteHost", "")).split("@")[0]   # e.g. sshtojob1_2: any dynamic slot
    assert slot.startswith(f"{SLOT_PREFIX}1_"), slot
    assert f"container=HTCJob_{sleeping_job.cluster}_0_{slot}_u{owner_uid} " in log[-1]

    # condor_ssh_to_job JOB: an interactive shell (no terminal here: it reads stdin)
    shell = ssh(pool, sleeping_job, input="id -u\npwd\nls /bin/busybox\ncat /tmp/marker\nexit 0\n")
    lines = shell.stdout.splitlines()
    assert lines[0] == uid and lines[1] == cwd
    assert "/bin/busybox" in lines and "only-in-the-container" in lines

    # files in and out through commands (what works with an image that has no sftp-server)
    payload = os.urandom(200_000)
    ssh(pool, sleeping_job, "cat > upload.bin", input=payload)
    back = ssh(pool, sleeping_job, "cat upload.bin", input=b"")   # bytes in, bytes out
    assert back.stdout == payload
    listing = ssh(pool, sleeping_job, "tar cf - upload.bin | tar tvf -", input=b"")
    assert b"upload.bin" in listing.stdout


def test_sftp_scp_rsync_say_what_the_image_lacks_and_others_stay_out(pool, sleeping_job):
    sftp = ssh(pool, sleeping_job, input="ls\n", check=False, tool=("-ssh", "sftp"))
    assert sftp.returncode != 0
    assert "image has no sftp-server" in sftp.stderr and "cat > FILE" in sftp.stderr, sftp.stderr
    # scp over SFTP (the default) fails too, but prints its own words, not the server's
    scp = pool.condor("condor_ssh_to_job", "-auto-retry", "-ssh", "scp", f"{sleeping_job.cluster}.0",
                      "remote:out.txt", "/dev/null", user=sleeping_job.user, check=False, timeout=120, input="")
    assert scp.returncode != 0, scp.stderr
    legacy = pool.condor("condor_ssh_to_job", "-auto-retry", "-ssh", "scp -O", f"{sleeping_job.cluster}.0",
                         "remote:out.txt", "/dev/null", user=sleeping_job.user, check=False, timeout=120,
                         input="")
    assert legacy.returncode != 0 and "scp -O needs scp in the job's image" in legacy.stderr, legacy.stderr
    rsync = ssh(pool, sleeping_job, "rsync --server --sender -e.LsfxC . out.txt", check=False)
    assert rsync.returncode == 127 and "rsync needs rsync in the job's image" in rsync.stderr
    # another user gets no session into this job
    other = pool.condor("condor_ssh_to_job", f"{sleeping_job.cluster}.0", "id -u", user="cdtest2",
                        check=False, timeout=120, input="")
    assert other.returncode != 0 and other.stdout.strip() == ""


def devpts_has_tty_group() -> bool:
    """A non-root sshd can give a session a terminal only when devpts hands ptys to group tty (gid=5)."""
    with open("/proc/mounts") as mounts:
        return any(line.split()[2] == "devpts" and "gid=5" in line.split()[3].split(",")
                   for line in mounts if len(line.split()) > 3)


@pytest.fixture
def terminal_possible():
    if not devpts_has_tty_group():
        pytest.skip("devpts here is mounted without gid=5, so the job user's sshd cannot chown a pty "
                    "(HTCondor's own ssh_to_job fails the same way); the pty path is tested in "
                    "tests/agent/test_agent_exec.py")


def test_a_terminal_session_gets_a_pty_in_the_container(pool, terminal_possible, sleeping_job):
    term = ssh(pool, sleeping_job, input="tty; echo term=$TERM; exit 4\n", check=False, tool=("-ssh", "ssh -tt"))
    assert term.returncode == 4, term.stderr
    assert "/dev/pts/" in term.stdout and "term=" in term.stdout
