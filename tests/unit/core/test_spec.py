"""The pure mapping: job ad + machine ad + settings -> container spec (no engine)."""
from __future__ import annotations

import dataclasses
import os

import classad2
import pytest
from testpaths import FIXTURES

from condor_docker.core import ads, request, spec
from condor_docker.core.failures import Code, Failure
from condor_docker.core.settings import SettingsError, default_settings


def real_request(**changes):
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    for key, value in changes.items():
        job[key] = value
    env = dict(line.split("=", 1) for line in open(os.path.join(FIXTURES, "launcher-environment.txt")).read().splitlines())
    return request.from_ads(job, machine, uid=1000, gid=1001, scratch_dir=env["_CONDOR_SCRATCH_DIR"],
                            starter_env=env, slot=env["_CONDOR_SLOT"])


def build(**changes):
    knobs = changes.pop("knobs", {})
    return spec.build_spec(real_request(**changes), default_settings(**knobs))


def test_real_job_ad_maps_like_htcondor():
    s = build()
    assert s.name == "HTCJob_28_0_slot1_1_u1000"   # the uid: another user cannot take this name
    assert s.image == "busybox:local"
    assert s.command == ("/bin/sh", "-c", "echo oomtest") and s.entrypoint is None
    assert s.user == "1000:1001" and s.group_add == ("1001",)
    assert s.working_dir == "/var/lib/condor/execute/dir_29135"
    assert s.cpu_shares == 100 and s.memory_mb == 128 and s.memory_bytes == 128 << 20
    assert s.hostname == "htcuser-28.0-vm"
    assert s.init and s.cap_drop == ("ALL",) and s.cap_add == () and "no-new-privileges" in s.security_opt
    assert s.network_mode == "bridge"          # nat, HTCondor's default
    assert s.stdin_open is False               # In = /dev/null


def test_private_tmp_and_scratch_mounts():
    mounts = {(m.source, m.target) for m in build().mounts}
    scratch = "/var/lib/condor/execute/dir_29135"
    assert mounts == {(scratch, scratch)}   # nothing the job could swap for a link
    tmpfs = dict(build().extras.tmpfs)
    assert set(tmpfs) == {"/tmp", "/var/tmp"}
    assert all("size=1024m" in options and "mode=1777" in options for options in tmpfs.values())


def test_environment_keeps_htcondor_vars_and_drops_host_ones():
    env = dict(build(Environment="FOO=bar 'SPACED=a b'").environment)
    assert env["FOO"] == "bar" and env["SPACED"] == "a b"
    assert env["_CONDOR_SCRATCH_DIR"] == "/var/lib/condor/execute/dir_29135"
    assert env["OMP_NUM_THREADS"] == "1" and env["_CONDOR_SLOT"] == "slot1_1"
    for host_only in ("HOME", "PWD", "SHLVL", "_", "_CONDOR_ANCESTOR_29135"):
        assert host_only not in env


def test_labels_identify_job_and_owner():
    labels = dict(build().labels)
    assert labels["org.condor_docker.managed"] == "true"
    assert (labels["org.condor_docker.cluster"], labels["org.condor_docker.proc"]) == ("28", "0")
    assert labels["org.condor_docker.slot"] == "slot1_1"
    assert labels["org.condor_docker.uid"] == "1000" and labels["org.condor_docker.owner"] == "htcuser"
    assert labels["org.condor_docker.agent"] == default_settings().agent_id  # scopes reaper and recovery


def test_transferred_executable_runs_from_scratch_dir():
    s = build(Cmd="/home/htcuser/jobs/analyse.sh", TransferExecutable=True, Arguments="a 'b c'")
    assert s.command == ("./analyse.sh", "a", "b c")


def test_v1_args_when_no_v2_arguments():
    job = real_request()
    del job.job_ad["Arguments"]
    job.job_ad["Args"] = "-c date"
    assert request._arguments(job.job_ad) == ("-c", "date")


def test_override_entrypoint():
    s = build(DockerOverrideEntrypoint=True)
    assert s.entrypoint == ("/bin/sh",) and s.command == ("-c", "echo oomtest")


def test_no_executable_runs_the_images_default():
    job = real_request()
    del job.job_ad["Cmd"]
    del job.job_ad["Arguments"]
    s = spec.build_spec(request.from_ads(job.job_ad, classad2.ClassAd({"Cpus": 1, "Memory": 64}),
                                         uid=5, gid=5, scratch_dir="/s"), default_settings())
    assert s.command is None and s.entrypoint is None


def test_slot_resources_win_over_requests_and_fall_back():
    job = real_request()
    assert job.cpus == 1 and job.memory_mb == 128       # slot, not RequestMemory = 64
    bare = request.from_ads(job.job_ad, classad2.ClassAd(), uid=5, gid=5, scratch_dir="/s")
    assert bare.memory_mb == 64                          # RequestMemory when there is no slot ad


def test_missing_memory_is_a_hold_naming_the_fix():
    with pytest.raises(Failure) as caught:
        request.from_ads(classad2.ClassAd({"DockerImage": "x:1", "RequestCpus": 1}), classad2.ClassAd(),
                         uid=5, gid=5, scratch_dir="/s")
    assert caught.value.code is Code.BAD_JOB_AD and "request_memory" in caught.value.reason


@pytest.mark.parametrize("network,mode", [("none", "none"), ("host", "host"), ("nat", "bridge")])
def test_network_types(network, mode):
    assert build(DockerNetworkType=network).network_mode == mode


def test_host_network_can_be_refused_and_admin_networks_allowed():
    with pytest.raises(Failure) as caught:
        build(DockerNetworkType="host", knobs={"CONDOR_DOCKER_ALLOW_HOST_NETWORK": "false"})
    assert caught.value.code is Code.NETWORK_NOT_ALLOWED
    assert build(DockerNetworkType="labnet", knobs={"DOCKER_NETWORKS": "labnet"}).network_mode == "labnet"
    with pytest.raises(Failure) as unknown:
        build(DockerNetworkType="labnet")
    assert "not a network of this machine" in unknown.value.reason


def test_root_is_refused():
    job = real_request()
    with pytest.raises(Failure) as caught:
        spec.build_spec(request.from_ads(job.job_ad, classad2.ClassAd({"Cpus": 1, "Memory": 64}), uid=0, gid=0,
                                         scratch_dir="/s"), default_settings())
    assert caught.value.code is Code.POLICY_REFUSED


def _mounted(knobs, vouched=(("Owner", "htcuser"),), **changes):
    job = dataclasses.replace(real_request(**changes), vouched=vouched)
    return {(m.target, m.read_only) for m in spec.build_spec(job, default_settings(**knobs)).mounts}


def test_only_listed_volumes_are_mounted_and_mount_if_only_vetoes():
    """HTCondor's meaning: DOCKER_MOUNT_VOLUMES lists what is mounted; _MOUNT_IF can veto one of them."""
    knobs = {"DOCKER_VOLUMES": "DATA, SOFT, OTHER", "DOCKER_VOLUME_DIR_DATA": "/data:/data:ro",
             "DOCKER_VOLUME_DIR_SOFT": "/opt/soft", "DOCKER_VOLUME_DIR_OTHER": "/other",
             "DOCKER_MOUNT_VOLUMES": "DATA, SOFT",
             "DOCKER_VOLUME_DIR_SOFT_MOUNT_IF": 'Owner == "htcuser"',
             "DOCKER_VOLUME_DIR_OTHER_MOUNT_IF": "true"}
    targets = _mounted(knobs)
    assert ("/data", True) in targets and ("/opt/soft", False) in targets
    assert ("/other", False) not in targets                       # not listed: a true MOUNT_IF adds nothing
    assert ("/opt/soft", False) not in _mounted(knobs, vouched=(("Owner", "other"),))


def test_mount_if_reads_only_what_the_agent_vouches_for():
    """Trust round 2, item 3: `Owner = "alice"` written into .job.ad does not get alice's volume."""
    knobs = {"DOCKER_VOLUMES": "ALICE", "DOCKER_VOLUME_DIR_ALICE": "/home/alice/data:/data",
             "DOCKER_MOUNT_VOLUMES": "ALICE", "DOCKER_VOLUME_DIR_ALICE_MOUNT_IF": 'Owner == "alice"'}
    assert ("/data", False) not in _mounted(knobs, vouched=(("Owner", "mallory"),), Owner="alice")
    assert ("/data", False) in _mounted(knobs, vouched=(("Owner", "alice"),), Owner="mallory")


@pytest.mark.parametrize("expression", ['TARGET.Owner == "alice"', 'Owner == "alice"',
                                        'MY.Name == "slot1@ep" && TARGET.Owner == "alice"'])
def test_mount_if_is_evaluated_with_the_machine_as_my_and_the_job_as_target(expression):
    """HTCondor's scopes: a site's `TARGET.Owner == ...` must not silently read as undefined (never mounted)."""
    knobs = {"DOCKER_VOLUMES": "ALICE", "DOCKER_VOLUME_DIR_ALICE": "/home/alice/data:/data",
             "DOCKER_MOUNT_VOLUMES": "ALICE", "DOCKER_VOLUME_DIR_ALICE_MOUNT_IF": expression}
    vouched = (("Name", "slot1@ep"),)
    assert ("/data", False) in _mounted(knobs, vouched=(("Owner", "alice"),) + vouched)
    assert ("/data", False) not in _mounted(knobs, vouched=(("Owner", "bob"),) + vouched)


@pytest.mark.parametrize("expression", ['WantData =?= true', 'TARGET.Owner == "a" || MY.Cmd == "x"',
                                        'AcctGroup == "physics"'])
def test_mount_if_naming_a_job_attribute_is_refused_at_start(expression):
    with pytest.raises(SettingsError) as caught:
        default_settings(DOCKER_VOLUMES="D", DOCKER_VOLUME_DIR_D="/d", DOCKER_MOUNT_VOLUMES="D",
                         DOCKER_VOLUME_DIR_D_MOUNT_IF=expression)
    assert "DOCKER_VOLUME_DIR_D_MOUNT_IF" in str(caught.value) and "Owner, RemoteOwner" in str(caught.value)


def test_limits_caps_and_extras_from_knobs():
    s = build(knobs={"CONDOR_DOCKER_MAX_MEMORY_MB": "100", "CONDOR_DOCKER_PIDS_LIMIT": "64",
                     "CONDOR_DOCKER_ADD_CAPABILITIES": "SYS_PTRACE", "DOCKER_SHM_SIZE": "1048576",
                     "DOCKER_EXTRA_ARGUMENTS": "--ulimit nofile=1024:2048 --label site=x --env SITE=lab"})
    assert s.memory_mb == 100 and s.pids_limit == 64 and s.cap_add == ("SYS_PTRACE",) and s.shm_size == 1048576
    assert s.extras.ulimits == (("nofile", 1024, 2048),)
    assert ("site", "x") in s.labels and ("SITE", "lab") in s.environment


def test_extra_arguments_refuse_unknown_options():
    with pytest.raises(SettingsError) as caught:
        spec.parse_extra_arguments("--privileged")
    assert "--privileged" in str(caught.value) and "DOCKER_EXTRA_ARGUMENTS" in str(caught.value)


def test_container_name_is_engine_safe():
    assert spec.container_name(1, 2, "slot1_1@host") == "HTCJob_1_2_slot1_1_host"


def test_bad_pull_policy_is_a_hold():
    with pytest.raises(Failure) as caught:
        build(DockerPullPolicy="sometimes")
    assert caught.value.code is Code.BAD_JOB_AD and "docker_pull_policy" in caught.value.reason
    assert build(DockerPullPolicy="always").image == "busybox:local"


def test_an_images_own_condor_docker_labels_cannot_speak_for_the_agent():
    """Trust round 2, item 13: the engine merges image labels in; every key the agent reads is set."""
    from condor_docker.core import labels
    mine = dict(build().labels)
    for key in (labels.LAUNCHER_PID_LABEL, labels.STARTER_PID_LABEL, labels.CGROUP_PARENT_LABEL,
                labels.SELFTEST_LABEL):
        assert mine[key] == ""
    for key in (labels.MANAGED_LABEL, labels.AGENT_LABEL, labels.UID_LABEL, labels.SCRATCH_DIR_LABEL):
        assert mine[key]


def _built(knobs, vouched):
    return spec.build_spec(dataclasses.replace(real_request(), vouched=vouched), default_settings(**knobs))


ALICE = (("Owner", "alice"), ("Cpus", 2), ("Memory", 4096))
BOB = (("Owner", "bob"), ("Cpus", 1), ("Memory", 1024))


def test_drop_all_capabilities_is_an_expression_over_vouched_attributes_as_in_htcondor():
    """HTCondor evaluates DOCKER_DROP_ALL_CAPABILITIES per job (param_boolean over the ads); a site's
    `StringListMember(Owner, "...")` must mean the same here (HTCondor's own functions, not ERROR)."""
    knobs = {"DOCKER_DROP_ALL_CAPABILITIES": '!StringListMember(Owner, "alice,carol")'}
    assert _built(knobs, ALICE).cap_drop == ()
    assert _built(knobs, BOB).cap_drop == ("ALL",)
    # undefined or an error: HTCondor's default, drop them
    assert _built({"DOCKER_DROP_ALL_CAPABILITIES": "RemoteUser == \"x\""}, ALICE).cap_drop == ("ALL",)
    assert _built({"DOCKER_DROP_ALL_CAPABILITIES": 'Owner + 1'}, ALICE).cap_drop == ("ALL",)
    assert _built({"DOCKER_DROP_ALL_CAPABILITIES": "false"}, BOB).cap_drop == ()


def test_shm_size_is_an_expression_over_the_trusted_slot_size():
    knobs = {"DOCKER_SHM_SIZE": "Memory * 1024 * 1024 / 4"}
    assert _built(knobs, ALICE).shm_size == 1024 * 1024 * 1024
    assert _built(knobs, BOB).shm_size == 256 * 1024 * 1024
    assert _built({"DOCKER_SHM_SIZE": "Memory - 99999"}, BOB).shm_size == 0        # negative: engine default
    assert _built({"DOCKER_SHM_SIZE": "RemoteUser * 2"}, BOB).shm_size == 0        # undefined: not set
    assert _built({"DOCKER_SHM_SIZE": "65536"}, BOB).shm_size == 65536


@pytest.mark.parametrize("knob", ["DOCKER_DROP_ALL_CAPABILITIES", "DOCKER_SHM_SIZE"])
@pytest.mark.parametrize("expression", ['AcctGroup == "admins"', "TARGET.RequestMemory * 2", "MY.WantCaps"])
def test_expression_knobs_naming_job_attributes_are_refused_at_start(knob, expression):
    """The job writes its own ad: a knob that reads it would let the job choose its capabilities."""
    with pytest.raises(SettingsError) as caught:
        default_settings(**{knob: expression})
    assert knob in str(caught.value) and "Owner, RemoteOwner" in str(caught.value)


def test_a_plain_bool_knob_is_still_refused_when_not_a_boolean():
    with pytest.raises(SettingsError, match="is not a boolean"):
        default_settings(DOCKER_RUN_UNDER_INIT="Owner == \"x\"")


def test_container_services_publish_on_the_admins_address_and_hold_without_a_network():
    web = {"ContainerServiceNames": "web, api", "web_ContainerPort": 8080, "api_ContainerPort": 9000}
    s = build(DockerNetworkType="nat", knobs={"CONDOR_DOCKER_SERVICE_ADDRESS": "127.0.0.1"}, **web)
    assert s.published == (8080, 9000) and s.publish_address == "127.0.0.1"
    assert s.services == (("web", 8080), ("api", 9000))
    assert build(DockerNetworkType="host", **web).published == ()       # it listens on the host already
    with pytest.raises(Failure) as caught:
        build(DockerNetworkType="none", **web)
    assert caught.value.code is Code.BAD_JOB_AD and "needs a network" in caught.value.reason
    assert build(DockerNetworkType="none").published == ()


@pytest.mark.parametrize("changes,words", [
    ({"ContainerServiceNames": "web"}, "service web has no usable port: set web_container_port"),
    ({"ContainerServiceNames": "web", "web_ContainerPort": 70000}, "service web has no usable port"),
    ({"ContainerServiceNames": "9lives", "9lives_ContainerPort": 80}, "'9lives' is not a service name"),
])
def test_a_service_that_cannot_be_published_is_a_hold_naming_it(changes, words):
    with pytest.raises(Failure) as caught:
        real_request(**changes)
    assert caught.value.code is Code.BAD_JOB_AD and words in caught.value.reason, caught.value.reason


def test_a_bad_service_address_stops_the_agent_at_start():
    with pytest.raises(SettingsError, match="CONDOR_DOCKER_SERVICE_ADDRESS = 'everywhere' is not an IP address"):
        default_settings(CONDOR_DOCKER_SERVICE_ADDRESS="everywhere")


def test_docker_send_credentials_is_a_hold_never_silently_ignored():
    with pytest.raises(Failure) as caught:
        real_request(DockerSendCredentials=True)
    assert caught.value.code is Code.BAD_JOB_AD and "docker_send_credentials" in caught.value.reason
    assert "CONDOR_DOCKER_CREDENTIAL_REGISTRIES" in caught.value.reason
    assert real_request(DockerSendCredentials=False).image


def test_service_names_differing_only_in_case_are_one_service():
    job = real_request(ContainerServiceNames="Web, web, api", web_ContainerPort=80, api_ContainerPort=81)
    assert job.services == (("Web", 80), ("api", 81))
