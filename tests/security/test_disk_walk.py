"""The root agent's disk walk of a job's scratch dir (trust boundary round 2, item 6), attacked as a real user.

The job's user owns the scratch dir: it decides how many entries the agent's walk
meets, how deep they nest, and what its .machine.ad says about the disk limit.
Each test is one such attack against a live agent (engine/usage.tree_size,
engine/lifecycle.ContainerRun._watch_disk, agent/policy._disk_limit_kb).
"""
from __future__ import annotations

import os
import threading

import pytest
from sectest import FIXTURES, PYTHON, agent_fds

from condor_docker.engine import usage

pytestmark = [pytest.mark.root, pytest.mark.engine]

SIBLINGS = 100_000
FD_HEADROOM = 2 * usage.MAX_WALK_DEPTH + 64   # one walk's two fds per level, plus two jobs' own fds


def _as_user(run_as, user: str, code: str, *args: str, timeout: float = 120) -> None:
    """Run `code` as the job's user (what the job could do to its own scratch dir from any process)."""
    process = run_as(user, [PYTHON, "-c", code, *args], env={"PATH": "/usr/bin:/bin"}, cwd="/")
    assert process.wait(timeout=timeout) == 0


def _machine_ad_without_disk() -> str:
    """The real slot's .machine.ad with its `Disk` line deleted, as the job may do."""
    with open(os.path.join(FIXTURES, "machine.ad")) as stream:
        lines = stream.read().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0].strip() != "Disk"]
    assert len(kept) == len(lines) - 1
    return "\n".join(kept) + "\n"


def _without(ad_text: str, attr: str) -> str:
    """An ad with every `attr = ...` line removed (the job's .job.ad is its own to rewrite)."""
    return "".join(line + "\n" for line in ad_text.splitlines() if line.split("=", 1)[0].strip() != attr)


class _FdWatch:
    """The most fds the agent held at any moment, sampled every few ms from another thread."""

    def __init__(self, agent) -> None:
        self.agent, self.peak, self._stop = agent, agent_fds(agent), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            try:
                self.peak = max(self.peak, agent_fds(self.agent))
            except OSError:   # a fd closed while it was listed
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def _kill_all(agent, managed_containers, *jobs) -> None:
    for name in managed_containers():
        agent.call("signal", container=name, signal=9, grace=0)
    for job in jobs:
        job.wait(60)
    assert not managed_containers()


def _hold(fake_chirp) -> dict:
    return {k: v for k, v in fake_chirp.attributes.items() if k.startswith("ChirpCondorDockerHold")}


def test_100000_sibling_directories_keep_the_agents_fds_bounded(agent_factory, run_as, make_scratch, start_launcher,
                                                                real_job_ad, wait_until, managed_containers):
    """The walk opens a directory only while it is inside it: two fds per level, never one per directory.

    Before: every subdirectory was opened when listed, so 100,000 siblings took the
    root agent to its fd limit (EMFILE for every other job's connection) for the walk.
    """
    agent = agent_factory(CONDOR_DOCKER_DISK_CHECK_PERIOD="1")   # no Disk below: the filesystem is the limit
    scratch = make_scratch("cdtest1", _without(real_job_ad(Arguments="-c 'sleep 60'"), "RequestDisk"),
                           _machine_ad_without_disk())
    _as_user(run_as, "cdtest1", "import os, sys\nfor i in range(int(sys.argv[2])): os.mkdir(f'{sys.argv[1]}/{i}')",
             scratch, str(SIBLINGS))
    idle = agent_fds(agent)
    watch = _FdWatch(agent)
    hog = start_launcher(agent, scratch)
    try:
        wait_until(lambda: [j for j in agent.call("status")["jobs"] if j["container_id"]], 60, "the job runs")
        # launched as the first walk starts (one period after the container), running through it
        other = start_launcher(agent, make_scratch("cdtest2", real_job_ad(Arguments="-c 'sleep 3; echo fine'")),
                               user="cdtest2")
        wait_until(lambda: "the disk walk took" in agent.log_text(), 60, "the agent walked the 100,000 directories")
        assert other.wait(60) == 0, other.stderr()
        assert other.stdout() == "fine\n"
        assert hog.process.poll() is None, hog.stderr()   # 100,000 empty dirs are not over any limit
    finally:
        peak = watch.stop()
        _kill_all(agent, managed_containers, hog)
    assert peak <= idle + FD_HEADROOM, (idle, peak)


def _held_over_disk(agent, scratch, start_launcher, fake_chirp, test_users, managed_containers) -> str:
    """Launch cdtest1's job; it must be killed (137) and held 103 through Chirp. Its launcher's stderr."""
    fake_chirp.write_config(scratch, *test_users["cdtest1"])
    job = start_launcher(agent, scratch)
    try:
        assert job.wait(40) == 137, job.stderr()
    finally:
        _kill_all(agent, managed_containers, job)
    assert _hold(fake_chirp)["ChirpCondorDockerHoldSubCode"] == "103", fake_chirp.attributes
    return job.stderr()


def test_the_disk_limit_is_the_trusted_slots_when_the_job_deletes_disk(agent_factory, make_scratch, start_launcher,
                                                                       real_job_ad, fake_chirp, test_users,
                                                                       managed_containers):
    """Deleting `Disk` (and RequestDisk) from the job's own ads leaves the trusted limit, never none.

    Here the trusted source is the admin's cap (1 MB, CONDOR_DOCKER_MAX_DISK_MB): a job
    writing 4 MB is killed and held with subcode 103.
    """
    agent = agent_factory(CONDOR_DOCKER_MAX_DISK_MB="1", CONDOR_DOCKER_DISK_CHECK_PERIOD="1")
    job_ad = _without(real_job_ad(Arguments="-c 'head -c 4194304 /dev/zero > big; sleep 20'"), "RequestDisk")
    scratch = make_scratch("cdtest1", job_ad, _machine_ad_without_disk())
    stderr = _held_over_disk(agent, scratch, start_launcher, fake_chirp, test_users, managed_containers)
    assert "over its disk limit of 1024 KB" in stderr, stderr


def test_a_tree_too_deep_to_measure_is_held_not_taken_as_small(agent_factory, run_as, make_scratch, start_launcher,
                                                                real_job_ad, fake_chirp, test_users,
                                                                managed_containers):
    """Past MAX_WALK_DEPTH the walk is incomplete, and an incomplete walk is a hold (103), not "within the limit".

    The live half of item 6c: the entry cap (2,000,000) cannot be lowered in a running
    agent, the depth cap (128) is cheap to reach, and both end in the same
    `complete=False` that lifecycle must hold.  A 4 MB file sits at the bottom.
    """
    agent = agent_factory(CONDOR_DOCKER_DISK_CHECK_PERIOD="1")
    scratch = make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 20'"))
    _as_user(run_as, "cdtest1", "import os, sys\npath = os.path.join(sys.argv[1], *['d'] * int(sys.argv[2]))\n"
             "os.makedirs(path)\nopen(os.path.join(path, 'big'), 'wb').write(b'x' * (4 << 20))",
             scratch, str(usage.MAX_WALK_DEPTH + 2))
    stderr = _held_over_disk(agent, scratch, start_launcher, fake_chirp, test_users, managed_containers)
    assert "disk use cannot be measured" in stderr and f"deeper than {usage.MAX_WALK_DEPTH} levels" in stderr, stderr


def test_many_entries_before_a_big_file_never_hide_it(run_as, make_scratch):
    """Whatever the entry cap, a walk that stops early says so: the big file is charged or the job is held.

    At the tree_size level (the 2,000,000-entry cap of a live agent cannot be lowered): the
    job's user makes 300 empty files and then a 4 MB one, and for every cap below the
    tree's entry count the walk either counted the 4 MB or returned complete=False
    (lifecycle holds that, see the test above).  Before: the walk stopped at its cap and
    returned what it had counted as the size, so the empty files first hid the big one.
    """
    scratch = make_scratch("cdtest1")
    _as_user(run_as, "cdtest1", "import os, sys\nfor i in range(300): open(f'{sys.argv[1]}/e{i}', 'w').close()\n"
             "open(f'{sys.argv[1]}/big', 'wb').write(b'x' * (4 << 20))", scratch)
    entries = len(os.listdir(scratch))
    assert usage.tree_size(scratch).kb >= 4096
    for cap in range(entries):
        size = usage.tree_size(scratch, max_entries=cap)
        assert not size.complete or size.kb >= 4096, (cap, size)
