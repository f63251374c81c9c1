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
                      proc_root: str = "/proc") -> str | None:
    """The cgroup to create the container under: the launcher's job cgroup, or None.

    Only on cgroup v1 with the cgroupfs driver: there the engine creates
    `<parent>/<container id>` in every controller and the v1 hierarchy counts a
    child's CPU and memory in its parent's, so the starter's own accounting of the
    job cgroup (cpuacct.stat, memory.max_usage_in_bytes), its memory limit and its
    freezer all cover the container.  On v2 a cgroup holding a process (the
    launcher) cannot give controllers to a child, and the systemd driver wants
    slice names, so we leave the container where the engine puts it.

    The launcher's user cannot move it into a cgroup it may not write (the
    cgroup dirs belong to root), and the path must be under `prefix` (HTCondor's
    BASE_CGROUP), so a launcher started outside HTCondor gets the default place.
    """
    if cgroup_v2 or driver != "cgroupfs" or not prefix:
        return None
    paths = cgroup_paths(pid, proc_root)
    path = paths.get("memory") or paths.get("cpuacct")
    if not path or ".." in path.split("/"):
        return None
    prefix = "/" + prefix.strip("/")
    if path == prefix or not path.startswith(prefix + "/"):
        return None
    return path


def container_cgroup_parent(name: str, job_cgroup: str | None, driver: str) -> str | None:
    """`<job cgroup or /condor_docker>/<container name>`; None when the engine's driver is not cgroupfs.

    (The systemd driver takes only `*.slice` names; there the engine's stream is all we have.)
    """
    if driver != "cgroupfs" or "/" in name or name in ("", ".", ".."):
        return None
    base = (job_cgroup or DEFAULT_PARENT).rstrip("/")
    return f"{base}/{name}"
