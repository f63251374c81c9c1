"""The agent's run dir and socket: a root-owned directory nobody else can change, a 0666 socket in it.

Anyone may connect; each request is authorized by the peer's kernel
credentials (see server.py).  The sshd template for condor_ssh_to_job is
written into the same directory (exec_op.install_sshd_template).
"""
from __future__ import annotations

import os
import socket
import stat

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn


def prepare_socket_dir(directory: str) -> None:
    """Create the socket's directory root-owned 0755; refuse one anybody else could change."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755, exist_ok=True)
        os.chown(directory, 0, 0)
        os.chmod(directory, 0o755)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{directory} is not a directory (a link?)")
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise OSError(f"{directory} must be owned by root and writable by root alone "
                      f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})")


def bind_socket(path: str) -> socket.socket:
    """Bind the listening socket (mode 0666: anyone connects, each request is authorized)."""
    prepare_socket_dir(os.path.dirname(os.path.abspath(path)))
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            raise OSError(f"another agent already answers on {path}")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # a dead agent's socket
        finally:
            probe.close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(LISTEN_BACKLOG)
    return listener
