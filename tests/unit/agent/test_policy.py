"""The agent's policy, without an engine: paths, ad files, resources, privileges."""
from __future__ import annotations

import os

import pytest
from testpaths import FIXTURES

from condor_docker.agent import policy, slots
from condor_docker.agent import scratch as agent_scratch
from condor_docker.core import ads
from condor_docker.core.failures import Code, Failure, Kind
from condor_docker.core.request import from_ads
from condor_docker.core.settings import default_settings
from condor_docker.core.spec import build_spec

UID = os.getuid()


@pytest.fixture
def execute(tmp_path):
    root = tmp_path / "execute"
    (root / "dir_1").mkdir(parents=True)
    return root


def settings_for(execute, **knobs):
    return default_settings(CONDOR_DOCKER_EXECUTE_DIRS=str(execute), CONDOR_DOCKER_DEFAULT_NETWORK="none", **knobs)


def real_request(scratch="/var/lib/condor/execute/dir_1", uid=1001, gid=1001):
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    return from_ads(job, machine, uid=uid, gid=gid, scratch_dir=scratch)


@pytest.mark.parametrize("uid,gid", [(0, 1001), (1001, 0), (0, 0)])
def test_root_never_runs_a_job(uid, gid):
    with pytest.raises(Failure) as err:
        policy.check_job_peer(uid, gid)
    assert err.value.code is Code.POLICY_REFUSED


def test_scratch_directly_in_execute_dir_is_accepted(execute):
    path = str(execute / "dir_1")
    assert agent_scratch.check_scratch_path(path, settings_for(execute)) == agent_scratch.ScratchPlace(
        os.path.realpath(execute), "dir_1")
    with agent_scratch.open_scratch(path, UID, settings_for(execute)) as scratch:
        assert scratch.path == os.path.join(os.path.realpath(execute), "dir_1")
        assert scratch.still_in_place()


@pytest.mark.parametrize("path", ["relative/dir", "", "/", "/etc", "/proc/self/root/etc", "/proc/1/cwd",
                                  None, ["x"], 12])
def test_scratch_elsewhere_is_refused(execute, path):
    with pytest.raises(Failure, match="absolute|not under|not a plain") as err:
        agent_scratch.check_scratch_path(path, settings_for(execute))
    assert err.value.code is Code.POLICY_REFUSED


def test_the_execute_dir_itself_dotdot_and_nested_paths_are_refused(execute):
    (execute / "dir_1" / "nested").mkdir()
    for path in (str(execute), str(execute / "dir_1" / ".." / ".."), str(execute / "dir_1" / ".." / "dir_1"),
                 str(execute / "dir_1" / "nested")):
        with pytest.raises(Failure, match="not under|not a plain"):
            agent_scratch.check_scratch_path(path, settings_for(execute))


@pytest.fixture
def nested(execute):
    """HTCondor 25.13's layout: <EXECUTE>/dir_<pid> (condor's, 0755) holding the job's scratch/."""
    job_dir = execute / "dir_2"
    (job_dir / "scratch").mkdir(parents=True)
    (job_dir / "htcondor").mkdir()
    os.chmod(job_dir, 0o755)
    return job_dir


def test_the_25_13_layout_dir_pid_scratch_is_accepted(execute, nested):
    path = str(nested / "scratch")
    place = agent_scratch.check_scratch_path(path, settings_for(execute))
    assert place == agent_scratch.ScratchPlace(os.path.realpath(execute), "dir_2", "scratch")
    with agent_scratch.open_scratch(path, UID, settings_for(execute)) as scratch:
        assert scratch.path == os.path.join(os.path.realpath(execute), "dir_2", "scratch")
        assert scratch.job_dir == "dir_2"     # what the starter proof matches (dir_<starter pid>)
        assert scratch.still_in_place()


@pytest.mark.parametrize("other", ["htcondor", "user", "nested"])
def test_in_the_25_13_layout_only_scratch_is_a_scratch_dir(execute, nested, other):
    with pytest.raises(Failure, match="not under"):
        agent_scratch.check_scratch_path(str(nested / other), settings_for(execute))
    with pytest.raises(Failure, match="not under"):
        agent_scratch.check_scratch_path(str(nested / "scratch" / "scratch"), settings_for(execute))


def test_a_25_13_job_dir_the_job_could_write_is_refused(execute, nested):
    os.chown(nested, 54321, 54321)          # not root, not condor: as if the job owned dir_<pid>
    with pytest.raises(Failure, match="job dir .* is owned by uid 54321") as err:
        agent_scratch.open_scratch(str(nested / "scratch"), UID, settings_for(execute))
    assert err.value.code is Code.POLICY_REFUSED
    os.chown(nested, 0, 0)
    os.chmod(nested, 0o777)
    with pytest.raises(Failure, match="mode 0777"):
        agent_scratch.open_scratch(str(nested / "scratch"), UID, settings_for(execute))


def test_a_25_13_job_dir_that_is_a_symlink_is_refused(execute, nested):
    os.symlink(nested, execute / "dir_3")
    with pytest.raises(Failure, match="without following symbolic links"):
        agent_scratch.open_scratch(str(execute / "dir_3" / "scratch"), UID, settings_for(execute))


def test_a_sibling_with_the_same_prefix_is_refused(execute):
    sibling = str(execute) + "-evil"
    os.mkdir(sibling)
    with pytest.raises(Failure, match="not under"):
        agent_scratch.check_scratch_path(sibling + "/x", settings_for(execute))


def test_scratch_that_is_a_symlink_is_refused(execute, tmp_path):
    os.symlink(execute / "dir_1", execute / "link")
    with pytest.raises(Failure, match="without following symbolic links"):
        agent_scratch.open_scratch(str(execute / "link"), UID, settings_for(execute))


def test_an_execute_dir_others_can_write_is_refused(execute):
    os.chmod(execute, 0o777)
    with pytest.raises(Failure, match="writable by its owner alone"):
        agent_scratch.open_scratch(str(execute / "dir_1"), UID, settings_for(execute))
    os.chmod(execute, 0o755)


def test_scratch_owned_by_someone_else_is_refused(execute):
    with pytest.raises(Failure, match="owned by uid"):
        agent_scratch.open_scratch(str(execute / "dir_1"), UID + 1, settings_for(execute))


def test_ads_are_read_after_the_checks_without_following_links(execute, tmp_path):
    scratch = execute / "dir_1"
    (scratch / ".job.ad").write_text('Cmd = "/bin/sh"\n')
    secret = tmp_path / "secret"
    secret.write_text("not for the job\n")
    os.symlink(secret, scratch / ".machine.ad")
    with pytest.raises(Failure, match="cannot be read safely") as err:
        agent_scratch.read_job_files(str(scratch), UID, settings_for(execute))
    assert "not for the job" not in err.value.reason
    os.unlink(scratch / ".machine.ad")
    os.link(secret, scratch / ".machine.ad")
    with pytest.raises(Failure, match="plain file with one name, not 2 hard links"):
        agent_scratch.read_job_files(str(scratch), UID, settings_for(execute))
    os.unlink(scratch / ".machine.ad")
    os.mkfifo(scratch / ".machine.ad")   # must be refused at once, not waited on
    with pytest.raises(Failure, match="must be a plain file, not a FIFO"):
        agent_scratch.read_job_files(str(scratch), UID, settings_for(execute))
    os.unlink(scratch / ".machine.ad")
    real, job_text, machine_text = agent_scratch.read_job_files(str(scratch), UID, settings_for(execute))
    assert (real, job_text, machine_text) == (str(scratch), 'Cmd = "/bin/sh"\n', None)


def test_missing_job_ad_is_a_hold(execute):
    with pytest.raises(Failure) as err:
        agent_scratch.read_job_files(str(execute / "dir_1"), UID, settings_for(execute))
    assert err.value.code is Code.BAD_JOB_AD


def test_resources_above_the_trusted_slot_are_a_hold(execute):
    import dataclasses

    from condor_docker.agent.slots import SlotResources
    slot = SlotResources(2, 24000, 4096, 0, "the startd's slot1_1@vm")
    request = policy.check_resources(real_request(), None, slot)
    assert (request.cpus, request.memory_mb) == (1, 128)        # the slot's own size fits
    lying = dataclasses.replace(real_request(), memory_mb=10 ** 9)  # a rewritten .machine.ad
    with pytest.raises(Failure) as err:
        policy.check_resources(lying, None, slot)
    assert err.value.code is Code.POLICY_REFUSED
    assert "Memory = 1000000000 MB" in err.value.reason and "24000 MB" in err.value.reason
    with pytest.raises(Failure, match="Cpus = 64"):
        policy.check_resources(dataclasses.replace(real_request(), cpus=64), None, slot)
    with pytest.raises(Failure, match="GPUs = 8"):
        policy.check_resources(real_request(), "GPUs = 8\nDisk = 10\n", slot)


def test_a_job_cannot_choose_its_gpus_or_drop_its_disk_limit(execute):
    """Trust round 2, items 2 and 6: a 0-GPU slot whose .machine.ad lost `GPUs = 0` and says
    `AssignedGPUs = "all"`, and lost `Disk`, gets no device and the startd's disk limit."""
    import dataclasses

    from condor_docker.agent.slots import SlotResources
    forged = dataclasses.replace(real_request(), gpus=("all",), disk_kb=None)
    none = policy.check_resources(forged, 'AssignedGPUs = "all"\n', SlotResources(2, 24000, 4096, 0, "the startd"))
    assert none.gpus == () and none.disk_kb == 4096
    caps = policy.check_resources(forged, None, SlotResources(2, 24000, None, None, "the admin's caps"))
    assert caps.gpus == ()                                   # no startd word, no GPU
    one = SlotResources(2, 24000, 4096, 1, "the startd", assigned_gpus=("CUDA1",))
    assert policy.check_resources(forged, None, one).gpus == ("CUDA1",)
    assert policy.check_resources(dataclasses.replace(forged, gpus=("CUDA0", "CUDA1")), None, one).gpus == ("CUDA1",)


def test_memory_budget_refuses_for_now():
    machine = slots.MachineResources(2, 1000)
    slots.check_memory_budget(400, 600, machine, "1.0")
    with pytest.raises(Failure) as err:
        slots.check_memory_budget(401, 600, machine, "1.0")
    assert err.value.kind is Kind.REQUEUE


def test_host_network_only_when_allowed(execute):
    import dataclasses
    request = dataclasses.replace(real_request(), network_type="host")
    spec = build_spec(request, settings_for(execute))
    policy.check_spec(spec, settings_for(execute))
    refusing = settings_for(execute, CONDOR_DOCKER_ALLOW_HOST_NETWORK="false")
    with pytest.raises(Failure) as err:
        policy.check_spec(spec, refusing)
    assert err.value.code is Code.NETWORK_NOT_ALLOWED


def test_capabilities_come_from_the_admin_never_the_job(execute):
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    job["DockerCapAdd"] = "SYS_ADMIN"        # a job cannot ask; there is no such attribute for us
    job["DockerPrivileged"] = True
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    request = from_ads(job, machine, uid=1001, gid=1001, scratch_dir="/x")
    settings = settings_for(execute, CONDOR_DOCKER_ADD_CAPABILITIES="SYS_PTRACE")
    spec = build_spec(request, settings)
    assert spec.cap_add == ("SYS_PTRACE",) and spec.cap_drop == ("ALL",)
    policy.check_spec(spec, settings)
    import dataclasses
    widened = dataclasses.replace(spec, cap_add=("SYS_PTRACE", "SYS_ADMIN"))
    with pytest.raises(Failure, match="SYS_ADMIN"):
        policy.check_spec(widened, settings)
    with pytest.raises(Failure, match="root"):
        policy.check_spec(dataclasses.replace(spec, user="0:0"), settings)


def test_container_ownership_by_label():
    labels = {"org.condor_docker.managed": "true", "org.condor_docker.uid": "1001"}
    policy.check_container_owner(1001, "c", labels)
    policy.check_container_owner(0, "c", labels)
    with pytest.raises(Failure, match="does not belong"):
        policy.check_container_owner(1002, "c", labels)
    with pytest.raises(Failure, match="not managed"):
        policy.check_container_owner(0, "c", {"org.condor_docker.uid": "1001"})


def test_a_scratch_dir_swapped_after_the_checks_stops_the_start(execute):
    """agent/jobs._created runs after create, before start: the held fd must still be what the path names."""
    from types import SimpleNamespace

    from condor_docker.agent.jobs import JobService, TrackedJob
    scratch = agent_scratch.open_scratch(str(execute / "dir_1"), UID, settings_for(execute))
    job = TrackedJob("HTCJob_1_0_slot1_1_u1", "1.0", UID, 128, 0.0)
    ctx = SimpleNamespace(send_event=lambda message: True)
    try:
        JobService._created(None, ctx, job, "cid-1", scratch)          # unchanged: fine
        os.rename(execute / "dir_1", execute / "dir_1.old")
        (execute / "dir_1").mkdir()
        with pytest.raises(Failure, match="changed between the checks and the start") as err:
            JobService._created(None, ctx, job, "cid-2", scratch)
        assert err.value.code is Code.POLICY_REFUSED
    finally:
        scratch.close()


def test_a_shared_uid_is_not_enough_to_act_on_another_starters_container(tmp_path):
    """Trust round 2, item 10: with one uid for many submitters, only the starter's own job may act."""
    import shutil
    import subprocess
    import time

    import psutil

    from condor_docker.agent import starter_proof
    from condor_docker.core.labels import STARTER_PID_LABEL, UID_LABEL
    fake_starter = tmp_path / "condor_starter"
    shutil.copy("/bin/sh", fake_starter)
    starter = subprocess.Popen([str(fake_starter), "-c", "sleep 30; true"])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(starter.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        job = psutil.Process(starter.pid).children()[0].pid
        assert starter_proof.descends_from(job, starter.pid, {os.getuid()})
        assert not starter_proof.descends_from(os.getpid(), starter.pid, {os.getuid()})
        labels = {UID_LABEL: str(os.getuid() or 1000), STARTER_PID_LABEL: str(starter.pid)}
        with pytest.raises(Failure, match=f"not a job of condor_starter {starter.pid}"):
            policy.check_same_job(os.getpid(), 1000, "HTCJob_1_0_slot1_1_u1000", labels, require_starter=False)
        policy.check_same_job(os.getpid(), 0, "c", labels, require_starter=False)          # root may
        policy.check_same_job(os.getpid(), 1000, "c", {UID_LABEL: "1000"}, require_starter=False)
        with pytest.raises(Failure, match="CONDOR_DOCKER_REQUIRE_STARTER"):
            policy.check_same_job(os.getpid(), 1000, "c", {UID_LABEL: "1000"}, require_starter=True)
    finally:
        for child in psutil.Process(starter.pid).children(recursive=True):
            child.kill()
        starter.kill()
        starter.wait()


def test_the_capability_recheck_evaluates_the_knob_for_the_same_job(execute):
    """DOCKER_DROP_ALL_CAPABILITIES as an expression: kept for alice, so check_spec agrees; for bob
    (drop) a spec that keeps them is refused, whatever the job's own ad says about its Owner."""
    import dataclasses
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    job["Owner"] = "alice"                    # the job's word: never read by the knob
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    settings = settings_for(execute, DOCKER_DROP_ALL_CAPABILITIES='Owner != "alice"')
    alice = dataclasses.replace(from_ads(job, machine, uid=1001, gid=1001, scratch_dir="/x"),
                                vouched=(("Owner", "alice"),))
    bob = dataclasses.replace(alice, vouched=(("Owner", "bob"),))
    kept = build_spec(alice, settings)
    assert kept.cap_drop == ()
    policy.check_spec(kept, settings, alice.vouched)
    assert build_spec(bob, settings).cap_drop == ("ALL",)
    with pytest.raises(Failure, match="DOCKER_DROP_ALL_CAPABILITIES"):
        policy.check_spec(kept, settings, bob.vouched)


def test_a_job_without_a_starter_cannot_take_another_users_slot(tmp_path):
    """Without a starter proof (CONDOR_DOCKER_REQUIRE_STARTER = false) the slot name is the job's
    (_CONDOR_SLOT / .machine.ad Name).  Before: naming another user's slot gave that slot's
    AssignedGPUs and its RemoteOwner to MOUNT_IF (`RemoteOwner == "cdtest2@pool"` mounted
    cdtest2's volume for cdtest1); the docs named only the slot's size."""
    import pwd

    theirs = {"Name": "slot1_2@host", "Cpus": 1, "Memory": 512, "GPUs": 1, "AssignedGPUs": "CUDA0",
              "RemoteOwner": "cdtest2@pool", "RemoteUser": "cdtest2@pool"}
    source = slots.SlotSource(default_settings(), 4, 4096, query=lambda slot: dict(theirs))
    trusted = source.resources("slot1_2")
    cdtest1 = pwd.getpwnam("cdtest1").pw_uid
    with pytest.raises(Failure, match="claimed by cdtest2@pool, not by cdtest1"):
        policy.check_slot_user(cdtest1, trusted)
    policy.check_slot_user(pwd.getpwnam("cdtest2").pw_uid, trusted)   # its own slot
    policy.check_slot_user(cdtest1, source.caps())                    # no startd: nothing to compare
