"""Reading the kernel's cgroups: which version, where a process is, where a container goes.

Pure reads of /sys/fs/cgroup and /proc/<pid>/cgroup (nothing here writes a
cgroup); engine/usage.py reads and removes a container's parent cgroup,
agent/launcher_watch.py watches the launcher's.
"""
from __future__ import annotations

import os

CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "/condor_docker"


def is_cgroup_v2(root: str = CGROUP_ROOT) -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def cgroup_paths(pid: int, proc_root: str = "/proc") -> dict[str, str]:
    """{controller: path} from /proc/<pid>/cgroup; the v2 unified hierarchy is the key ""."""
    paths: dict[str, str] = {}
    try:
        with open(f"{proc_root}/{pid}/cgroup", encoding="utf-8") as stream:
            for line in stream:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                for controller in parts[1].split(",") if parts[1] else [""]:
                    paths[controller] = parts[2]
    except OSError:
        return {}
    return paths


def frozen(pid: int, proc_root: str = "/proc", root: str = CGROUP_ROOT) -> bool:
    """Whether the launcher's freezer cgroup (v1) or cgroup (v2) is frozen by the starter."""
    paths = cgroup_paths(pid, proc_root)
    try:
        if "freezer" in paths and paths["freezer"] != "/":
            with open(os.path.join(root, "freezer", paths["freezer"].lstrip("/"), "freezer.state")) as stream:
                return stream.read().strip() in ("FROZEN", "FREEZING")
        if "" in paths and paths[""] != "/" and is_cgroup_v2(root):
            with open(os.path.join(root, paths[""].lstrip("/"), "cgroup.events")) as stream:
                return "frozen 1" in stream.read().split("\n")
    except OSError:
        return False
    return False


def job_cgroup_parent(pid: int, prefix: str, *, cgroup_v2: bool, driver: str,
                      proc_root: str = "/proc", root: str = CGROUP_ROOT, trusted_uid: int = 0) -> str | None:
    """The cgroup to create the container under: the launcher's job cgroup, or None.

    Only with the cgroupfs driver: there the engine creates `<parent>/<container id>`
    below any cgroup path.  v1: the job cgroup itself; v1 counts a child's CPU and
    memory in its parent's, so the starter's accounting of the job cgroup
    (cpuacct.stat, memory.max_usage_in_bytes), its memory limit and its freezer all
    cover the container.  v2: the slot's slice around the launcher's scope
    (`htcondor_job_slice`), the cgroup HTCondor reads, freezes and kills.  The
    systemd driver takes only a systemd slice *name* (`a-b.slice` is
    /a.slice/a-b.slice) and HTCondor's cgroups are not systemd units: no name
    reaches them, so there the container stays where the engine puts it.

    The launcher's user cannot move it into a cgroup it may not write (the
    cgroup dirs belong to root), and the path must be under `prefix` (HTCondor's
    BASE_CGROUP), so a launcher started outside HTCondor gets the default place.
    """
    if driver != "cgroupfs" or not prefix:
        return None
    if cgroup_v2:
        return htcondor_job_slice(pid, prefix, proc_root=proc_root, root=root, trusted_uid=trusted_uid)
    paths = cgroup_paths(pid, proc_root)
    path = paths.get("memory") or paths.get("cpuacct")
    if not path or ".." in path.split("/"):
        return None
    prefix = "/" + prefix.strip("/")
    if path == prefix or not path.startswith(prefix + "/"):
        return None
    return path


def htcondor_job_slice(pid: int, prefix: str, *, proc_root: str = "/proc", root: str = CGROUP_ROOT,
                       trusted_uid: int = 0) -> str | None:
    """cgroup v2: the slot's slice HTCondor made around the launcher, or None.

    A starter tracking the job directly (ProcFamilyDirectCgroupV2) makes
    `<its own cgroup's parent>/<BASE_CGROUP>/<uniq>.slice/<uniq>.scope` and puts
    the job in the scope (v2 allows no process in a cgroup whose children have
    controllers); it reads usage (cpu.stat, memory.stat), freezes, kills and
    checks OOM on the *slice*, all of which count every cgroup below it.  So a
    container in `<slice>/<name>/<id>`, a sibling of the scope, is the job's for
    HTCondor.

    The path comes from /proc/<pid>/cgroup (the kernel's, not the launcher's
    word).  HTCondor chowns the slice (not its parent) to the job's user, who can
    make cgroups below it and move their own processes there, but nowhere else:
    so the launcher must sit in exactly `<...>/<prefix>/<X>.slice/<X>.scope`, and
    `<...>/<prefix>` and every cgroup above it must belong to root: a user's own
    delegated tree (a slot's slice, user@<uid>.service) is theirs, not HTCondor's.
    """
    tail = prefix.strip("/")
    path = cgroup_paths(pid, proc_root).get("")
    if not tail or not path or not path.startswith("/"):
        return None
    parts = path.split("/")[1:]
    tail_parts = tail.split("/")
    if any(part in ("", ".", "..") for part in parts + tail_parts) or len(parts) < len(tail_parts) + 2:
        return None
    slice_name, scope_name = parts[-2], parts[-1]
    if not slice_name.endswith(".slice") or scope_name != slice_name[:-len(".slice")] + ".scope" \
            or slice_name == ".slice" or parts[-2 - len(tail_parts):-2] != tail_parts:
        return None
    base = "/" + "/".join(parts[:-2])
    try:   # the base and every cgroup above it: root's (HTCondor's, systemd's), none delegated to a user
        for depth in range(len(parts) - 1):
            if os.stat(os.path.join(root, *parts[:depth])).st_uid != trusted_uid:
                return None
    except OSError:
        return None
    return f"{base}/{slice_name}"


def container_cgroup_parent(name: str, job_cgroup: str | None, driver: str) -> str | None:
    """`<job cgroup or /condor_docker>/<container name>`; None when the engine's driver is not cgroupfs.

    (The systemd driver takes only systemd slice names, see `job_cgroup_parent`; there the
    engine's stream is all we have.)
    """
    if driver != "cgroupfs" or "/" in name or name in ("", ".", ".."):
        return None
    base = (job_cgroup or DEFAULT_PARENT).rstrip("/")
    return f"{base}/{name}"
