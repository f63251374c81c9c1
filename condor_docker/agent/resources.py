"""What a process holds, read from the kernel: open fds, threads, RSS, its connections to the engine.

The agent serves every job of the machine for as long as it runs, so anything
it keeps per job (a socket to dockerd, a thread, a copy of a job's fd) adds up
to its fd limit within a few thousand jobs.  These figures are the same
whoever reads them: the agent for `condor_docker status`, bench/soak.py and
the agent tests from outside (tests/agent/test_agent_resources.py), by pid.

A connection to the engine is a unix socket of the process whose peer is one
of the engine's: the kernel's sock_diag (netlink) gives each socket's peer
inode, and /proc/net/unix lists the engine's sockets under the engine
socket's path (the listener and every connection it accepted).
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import asdict, dataclass

import psutil

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_UDIAG_SHOW_PEER = 4
_UNIX_DIAG_PEER = 2


@dataclass(frozen=True)
class Figures:
    fds: int                  # open file descriptors
    engine_sockets: int       # of them, connections to the engine's socket
    threads: int
    rss_mb: float

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"fds {self.fds}, sockets to the engine {self.engine_sockets}, threads {self.threads}, "
                f"RSS {self.rss_mb:.1f} MB")


def figures(pid: int, engine_socket: str | None = "/var/run/docker.sock") -> Figures:
    """The figures of process `pid` now (root may read any process's; anyone their own)."""
    process = psutil.Process(pid)
    with process.oneshot():
        threads = process.num_threads()
        rss = process.memory_info().rss
    inodes = socket_inodes(pid)
    engine = engine_connections(inodes, engine_socket) if engine_socket else 0
    return Figures(fds=_count_fds(pid), engine_sockets=engine, threads=threads, rss_mb=rss / 2 ** 20)


def engine_path(url: str) -> str | None:
    """The socket path of a `unix://` engine URL (None for tcp:// and the like)."""
    return url[len("unix://"):] if url.startswith("unix://") else None


def _count_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets among `pid`'s open fds."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:   # closed meanwhile
            continue
        if target.startswith("socket:["):
            found.add(int(target[len("socket:["):-1]))
    return found


def engine_connections(inodes: set[int], engine_socket: str) -> int:
    """How many of these socket inodes are connected to a socket bound to `engine_socket`."""
    engine_side = listening_path_inodes(engine_socket)
    if not engine_side or not inodes:
        return 0
    peers = unix_peers()
    return sum(1 for inode in inodes if peers.get(inode) in engine_side)


def listening_path_inodes(path: str) -> set[int]:
    """Inodes of the unix sockets that carry `path` as their name: its listener and what it accepted."""
    real = os.path.realpath(path)
    names = {path, real}
    found = set()
    with open("/proc/net/unix") as table:
        next(table, None)
        for line in table:
            parts = line.split()
            if len(parts) >= 8 and parts[7] in names:
                found.add(int(parts[6]))
    return found


def unix_peers() -> dict[int, int]:
    """inode -> peer inode of every connected unix socket (the kernel's sock_diag)."""
    request = struct.pack("=BBHIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, _UDIAG_SHOW_PEER, 0) + b"\0" * 4
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0)
    peers: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as diag:
        diag.send(header + request)
        while True:
            data = diag.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == _NLMSG_DONE:
                    return peers
                if kind == _NLMSG_ERROR:
                    raise OSError("sock_diag refused the unix socket dump")
                body = offset + 16
                inode = struct.unpack_from("=I", data, body + 4)[0]
                attribute, end = body + 16, offset + length
                while attribute + 4 <= end:
                    size, what = struct.unpack_from("=HH", data, attribute)
                    if size < 4:
                        break
                    if what == _UNIX_DIAG_PEER:
                        peers[inode] = struct.unpack_from("=I", data, attribute + 4)[0]
                    attribute += (size + 3) & ~3
                if length < 16:
                    break
                offset += (length + 3) & ~3
            if not data:
                return peers
