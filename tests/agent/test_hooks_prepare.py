"""End to end through the emulated starter: PREPARE_JOB -> launcher -> JOB_EXIT, as cdtest1.

A real agent (root), the real engine and registry, real users and scratch dirs;
the ads are the real pool's with a few attributes changed.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import pytest
from starter import Outcome, Starter, StarterConfig, install_entry_points, wait_for

from condor_docker.core.arguments import args_to_v2_raw
from condor_docker.core.failures import Code

pytestmark = [pytest.mark.root, pytest.mark.engine]
TEST_ROOT = "/var/lib/condor_docker-test"
USER = "cdtest1"


@pytest.fixture(scope="module")
def entry_points():
    """Stand-ins for the installed console scripts (root-owned, 0755, not world-writable)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    os.makedirs(TEST_ROOT, 0o755, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="bin-", dir=TEST_ROOT)
    yield install_entry_points(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def make_starter(entry_points, test_users):
    """make_starter(agent, user="cdtest1", max_requeues=3) -> a Starter configured like config.d."""
    condor_docker, job_exit = entry_points

    def make(agent, user: str = USER, max_requeues: int = 3) -> Starter:
        args = args_to_v2_raw(["prepare-job", "--socket", agent.socket, "--launcher", condor_docker,
                               "--max-requeues", str(max_requeues)])
        uid, gid = test_users[user]
        return Starter(StarterConfig(condor_docker, args, job_exit), uid, gid)
    return make


def managed_containers(cluster: int) -> list[str]:
    result = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=org.condor_docker.managed=true",
                             "--filter", f"label=org.condor_docker.cluster={cluster}"],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.split()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cluster_of(job_ad_text: str) -> int:
    import classad2
    return int(classad2.parseOne(job_ad_text)["ClusterId"])


def test_hello_prints(agent, make_scratch, real_job_ad, make_starter):
    job = real_job_ad(Arguments="-c 'echo hello from docker'")
    outcome = make_starter(agent).run(make_scratch(USER, job))
    assert outcome.state == "completed", outcome.describe()
    assert outcome.exit_code == 0, outcome.describe()
    assert outcome.stdout == "hello from docker\n"
    # the rewrite the starter merged: an ordinary job running our launcher
    assert outcome.merged_ad["WantDocker"] is False
    assert outcome.merged_ad["TransferExecutable"] is False
    assert outcome.argv[1:] == ["launch", "--socket", agent.socket]
    assert managed_containers(cluster_of(job)) == []


def test_exit_code_is_the_jobs(agent, make_scratch, real_job_ad, make_starter):
    outcome = make_starter(agent).run(make_scratch(USER, real_job_ad(Arguments="-c 'echo oops >&2; exit 7'")))
    assert outcome.state == "completed", outcome.describe()
    assert outcome.exit_code == 7
    assert "oops" in outcome.stderr


def test_transferred_executable_runs_from_the_scratch_dir(agent, make_scratch, real_job_ad, make_starter,
                                                          test_users):
    job = real_job_ad(Cmd="hello.sh", Arguments="a 'b c'", TransferExecutable=True)
    scratch = make_scratch(USER, job)
    script = os.path.join(scratch, "hello.sh")
    with open(script, "w") as stream:
        stream.write('#!/bin/sh\necho "script in $PWD args: $1|$2"\n')
    os.chown(script, *test_users[USER])
    os.chmod(script, 0o755)
    outcome = make_starter(agent).run(scratch)
    assert outcome.state == "completed", outcome.describe()
    assert outcome.exit_code == 0, outcome.describe()
    assert outcome.stdout == f"script in {scratch} args: a|b c\n"


def test_bad_image_is_held_with_the_engines_reason(agent, make_scratch, real_job_ad, make_starter):
    image = "127.0.0.1:5000/condor-docker-test/no-such-image:1"
    outcome = make_starter(agent).run(make_scratch(USER, real_job_ad(DockerImage=image)))
    assert outcome.state == "held", outcome.describe()
    assert outcome.hold_reason_code == 19
    assert outcome.hold_reason_subcode == int(Code.IMAGE_NOT_FOUND) == 12
    assert outcome.hold_reason.startswith(
        "Error from slot1_1@vm: PREPARE_JOB (condor_docker) failed (reported status 012): ")
    assert "manifest unknown" in outcome.hold_reason or "not found" in outcome.hold_reason, outcome.hold_reason
    assert "no-such-image" in outcome.hold_reason


def test_unreachable_registry_requeues_then_holds(agent, make_scratch, real_job_ad, make_starter):
    image = f"127.0.0.1:{closed_port()}/x:1"
    first = make_starter(agent).run(make_scratch(USER, real_job_ad(DockerImage=image, NumShadowStarts=1)))
    assert first.state == "idle", first.describe()
    status = int(first.hook_stdout.split("HookStatusCode = ")[1].split()[0])
    assert status >= 300
    later = make_starter(agent).run(make_scratch(USER, real_job_ad(DockerImage=image, NumShadowStarts=4)))
    assert later.state == "held", later.describe()
    assert later.hold_reason_subcode == int(Code.TOO_MANY_REQUEUES) == 19
    assert image.split("/")[0] in later.hold_reason


def test_no_agent_requeues_then_holds(agent_factory, make_scratch, real_job_ad, make_starter):
    agent = agent_factory()
    agent.stop()
    first = make_starter(agent).run(make_scratch(USER, real_job_ad(NumShadowStarts=1)))
    assert first.state == "idle", first.describe()
    assert "(reported status 304)" in first.hold_reason and agent.socket in first.hold_reason
    later = make_starter(agent).run(make_scratch(USER, real_job_ad(NumShadowStarts=4)))
    assert later.state == "held" and later.hold_reason_subcode == 19, later.describe()


def test_non_docker_job_passes_through_the_hook(agent, make_scratch, real_job_ad, make_starter):
    """A vanilla job on the same machine: the hook prints nothing and the job runs as itself."""
    job = real_job_ad(WantDocker=False, Cmd="/bin/echo", Arguments="plain vanilla")
    job = "\n".join(line for line in job.splitlines() if not line.startswith("DockerImage")) + "\n"
    outcome = make_starter(agent).run(make_scratch(USER, job))
    assert outcome.hook_stdout == ""
    assert outcome.state == "completed" and outcome.stdout == "plain vanilla\n", outcome.describe()


def test_job_exit_removes_a_leftover_container(agent, make_scratch, real_job_ad, make_starter):
    """A container left behind (agent killed, then the launcher killed) is removed by JOB_EXIT.

    While the agent lives it removes a container whose launcher went away; after
    a restart it leaves found containers for their launchers to reattach, and
    only the reaper (after a grace) or JOB_EXIT remove them.
    """
    import classad2

    job = real_job_ad(Arguments="-c 'sleep 300'")
    cluster = cluster_of(job)
    scratch = make_scratch(USER, job)
    starter = make_starter(agent)
    with open(os.path.join(scratch, ".job.ad")) as stream:
        text = stream.read()
    prepared, merged = starter.prepare(scratch, text, classad2.parseOne(text))
    assert merged is not None, prepared.describe()
    argv = [starter.executable(scratch, merged), *starter.arguments(merged)]
    launcher = subprocess.Popen(argv, cwd=scratch, env=starter.job_env(scratch, merged, None),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                user=starter.uid, group=starter.gid, extra_groups=[], start_new_session=True)
    try:
        assert wait_for(lambda: managed_containers(cluster), timeout=60), agent.log_tail()
        agent.kill9()
    finally:
        os.killpg(launcher.pid, 9)
        launcher.wait(timeout=30)
    agent.start()
    assert managed_containers(cluster), "the restarted agent should leave the container for a reattach"
    outcome = Outcome(state="completed", exit_signal=9)
    starter.job_exit(scratch, merged, outcome, "exit")
    assert managed_containers(cluster) == [], outcome.job_exit_stderr + agent.log_tail()
    assert f"job {cluster}.0 on slot1_1: removed HTCJob_{cluster}_0_slot1_1" in outcome.job_exit_stderr, (
        outcome.job_exit_stderr + agent.log_tail())
