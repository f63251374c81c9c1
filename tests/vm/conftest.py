"""VM fixtures: the cgroup-v2 Debian 12 guest (scripts/vm/build-guest.sh) booted once per session.

    vm          the booted Guest (tests/vm/vmfixture.py); skips with the reason only when
                qemu/debootstrap cannot be installed, when not root, or when there are no
                HTCondor tarballs to put in the guest
    vm_project  the same guest with the checkout's wheel pip-installed (as an admin would)
                and the test registry and images made by scripts/engine-up.sh inside it
    vm_pool     a personal pool in the guest (tests/vm/guest_pool.py, i.e. poolfixture.Pool),
                once per HTCondor series the guest carries (25.0.13, 25.13.2) and engine cgroup
                driver (systemd, the image's; cgroupfs; $CONDOR_DOCKER_VM_CGROUP_DRIVERS)

Every test here is marked `vm`. The measured times (build, boot, install, pool start,
hello job) are printed at the end of the run. At session end the guest is powered off and
nothing of it may remain on the host: no qemu, no forwarded port, no run dir.
"""
from __future__ import annotations

import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from vmfixture import (  # noqa: E402
    MEASURED,
    Guest,
    VMError,
    build_guest,
    cgroup_drivers,
    ensure_tools,
    htcondor_versions,
)

VERSIONS = htcondor_versions(REPO)
DRIVERS = cgroup_drivers()
# one pool per (HTCondor series, engine cgroup driver), grouped by driver: one engine restart
POOLS = [(version, driver) for driver in DRIVERS for version in VERSIONS]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.vm)


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("cgroup-v2 VM guest (tests/vm)")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def vm():
    why = ensure_tools()
    if why:
        pytest.skip(why)
    try:
        guest_dir, seconds, built = build_guest(REPO)
    except VMError as error:
        if str(error).startswith("skip: "):
            pytest.skip(str(error)[6:])
        raise
    MEASURED["guest image"] = f"{'built' if built else 'cached'} in {seconds:.0f} s ({guest_dir})"
    guest = Guest.boot(guest_dir)
    MEASURED["boot"] = f"{guest.boot_seconds:.0f} s to sshd ({guest.accel}{'; ' if guest.notes else ''}" \
                       f"{'; '.join(guest.notes)})"
    try:
        yield guest
    finally:
        guest.shutdown()
        left = guest.leftovers()
        if left:
            pytest.fail(f"the guest left things on the host: {left}")


@pytest.fixture(scope="session")
def vm_project(vm):
    started = time.monotonic()
    wheel = vm.install_project(REPO)
    MEASURED["project install"] = f"{time.monotonic() - started:.0f} s ({wheel})"
    started = time.monotonic()
    vm.ssh(f"bash {vm_checkout()}/scripts/engine-up.sh", timeout=900)
    MEASURED["engine-up.sh in the guest"] = f"{time.monotonic() - started:.0f} s"
    return vm


def vm_checkout() -> str:
    from vmfixture import GUEST_CHECKOUT
    return GUEST_CHECKOUT


@pytest.fixture(scope="session", params=POOLS or [None],
                ids=lambda p: f"htcondor-{p[0]}-{p[1]}" if p else "none")
def vm_pool(request, vm_project):
    if request.param is None:
        pytest.skip("no HTCondor tarballs for the guest (or CONDOR_DOCKER_VM_CGROUP_DRIVERS is empty)")
    version, driver = request.param
    started = time.monotonic()
    if vm_project.set_cgroup_driver(driver):
        MEASURED[f"engine restart on the {driver} driver"] = f"{time.monotonic() - started:.0f} s"
    started = time.monotonic()
    pool = vm_project.pool(f"/opt/condor_docker/htcondor-{version}")
    pool.version, pool.driver = version, driver
    pool.name = f"{version} {driver}"
    offline = pool.info.get("first_offline")
    MEASURED[f"pool {pool.name}"] = (
        f"up in {time.monotonic() - started:.0f} s (HasDocker {pool.info['has_docker_after']:.0f} s after the "
        f"startd started" + (f"; HasDocker = false {offline['after']:.0f} s after it: "
                             f"{offline['DockerOfflineReason']}" if offline else "") + ")")
    try:
        yield pool
    finally:
        try:
            result = pool.call("stop", timeout=300)
        finally:
            pool.close()
        problems = []
        if [item for item in result["before"] if not item.startswith("process ")]:
            problems.append(f"left while the pool ran: {result['before']}")
        if result["killed"]:
            problems.append(f"processes that condor_off -fast -master did not end (killed): {result['killed']}")
        if result["after"]:
            problems.append(f"left after the pool stopped: {result['after']}")
        if result["root_left"]:
            problems.append("the pool dir could not be removed")
        if problems:
            pytest.fail(f"the guest's pool {version} ({driver} driver) left things behind: " + "; ".join(problems))
