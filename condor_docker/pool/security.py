"""The pool's secret -> this node's signing key and IDTOKEN; refusal to start without one.

Every node of the pool gets the same secret, the pool password, mounted from a
Kubernetes/Marathon secret or a root-only host file.  It is installed as the
POOL signing key (`SEC_PASSWORD_DIRECTORY/POOL`, root 0600): daemons verify the
IDTOKENS of their peers with it (the negotiator calling a schedd, a schedd
claiming a startd: every role is a server to someone), and the node mints its
own token (identity `condor@TRUST_DOMAIN`) with `condor_token_create`.  There
is no open-door default: without the secret the node refuses to start, unless
the admin says `--insecure` for a throwaway demo.
"""
from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass

from . import safeio

MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 64 * 1024
TOKEN_FILE_NAME = "condor_docker_pool_node"


class SecurityError(RuntimeError):
    """The node cannot be secured as asked; the message says what to mount or pass."""


@dataclass(frozen=True)
class Secured:
    key_path: str
    token_path: str


def refusal(secret_path: str) -> str:
    return (f"refusing to start: no pool secret at {secret_path or '(none given)'}. "
            "Mount the pool password (the same random string on every node, e.g. a Kubernetes Secret) "
            "and point --password-file / CONDOR_DOCKER_POOL_PASSWORD_FILE at it; "
            "or pass --insecure for a throwaway demo with no authentication at all")


def _fix(secret_path: str) -> str:
    return (f"keep the pool secret in a root-owned file no one else can read (on the host, for a bind mount: "
            f"chown root:root {secret_path}; chmod 0600 {secret_path}; Kubernetes: defaultMode: 0400), "
            "in directories only root can change")


def read_secret(secret_path: str) -> bytes:
    """The secret's bytes, or a SecurityError saying how to provide it.

    The key mints tokens for the whole pool: a secret that a user of this node owns, can
    read, or can swap (a link or directory of theirs on the way) is refused.  The file is
    opened once, through root's directories only, and checked and read on that fd.
    """
    if not secret_path:
        raise SecurityError(refusal(secret_path))
    try:
        fd = safeio.open_trusted(secret_path)
    except FileNotFoundError:
        raise SecurityError(refusal(secret_path)) from None
    except safeio.UntrustedPath as err:
        raise SecurityError(f"refusing the pool secret {secret_path}: {err}; {_fix(secret_path)}") from None
    except OSError as err:
        raise SecurityError(f"cannot open the pool secret {secret_path}: {err.strerror}; "
                            f"{_fix(secret_path)}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != 0:
            raise SecurityError(f"refusing the pool secret {secret_path}: it is owned by uid {st.st_uid}, not root; "
                                f"{_fix(secret_path)}")
        if st.st_mode & 0o077:
            raise SecurityError(f"refusing the pool secret {secret_path}: it is readable or writable by group or "
                                f"other (mode {stat.S_IMODE(st.st_mode):04o}); {_fix(secret_path)}")
        data = safeio.read_fd(fd, MAX_SECRET_BYTES)
    except OSError as err:
        raise SecurityError(f"cannot read the pool secret {secret_path}: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecurityError(f"the pool secret in {secret_path} is larger than {MAX_SECRET_BYTES} bytes: "
                            "it should be one random string (e.g. `openssl rand -base64 32`)")
    secret = data.strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise SecurityError(f"the pool secret in {secret_path} is {len(secret)} bytes: use at least "
                            f"{MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 32`)")
    return secret


def _write_private(path: str, data: bytes) -> None:
    """Root-only file, written through a fresh fd (never follows a planted link)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o700)
    tmp = f"{path}.new"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def install(secret_path: str, password_dir: str, token_dir: str, identity: str,
            condor_env: dict[str, str], token_create: str = "condor_token_create",
            secret: bytes | None = None) -> Secured:
    """Install the signing key and mint this node's token (as root, before the master starts).

    `secret`: what read_secret already read (the file is then not opened a second time).
    """
    if secret is None:
        secret = read_secret(secret_path)
    key_path = os.path.join(password_dir, "POOL")
    _write_private(key_path, secret)
    try:
        made = subprocess.run([token_create, "-key", "POOL", "-identity", identity],
                              env=condor_env, capture_output=True, text=True, timeout=60, check=False)
    except OSError as err:
        raise SecurityError(f"cannot run {token_create}: {err.strerror}; is HTCondor on PATH?") from None
    token = made.stdout.strip()
    if made.returncode != 0 or not token:
        raise SecurityError(f"condor_token_create failed (exit {made.returncode}): "
                            f"{(made.stderr or made.stdout).strip()[:400]}")
    token_path = os.path.join(token_dir, TOKEN_FILE_NAME)
    _write_private(token_path, (token + "\n").encode())
    return Secured(key_path, token_path)
