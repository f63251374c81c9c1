"""`condor_docker ssh-shell`: what a `condor_ssh_to_job` session runs, so it lands in the container.

For `condor_ssh_to_job`, HTCondor's starter runs a private sshd as the job's
user on the host, configured from SSH_TO_JOB_SSHD_CONFIG_TEMPLATE.  Our
template (`condor_docker config sshd-template`) forces every session, shell,
command or sftp subsystem alike, through this entry point:

    ForceCommand <condor_docker> ssh-shell --socket S <HTCondor's shell setup> <session env file>

It finds the job's scratch dir (the session dir `.condor_ssh_to_job_N` lives
in it), and for a docker job asks the agent to `exec` inside the job's
container: as the job's uid, in its working dir, with its environment,
passing this session's stdin/stdout/stderr (SCM_RIGHTS) and relaying window
size changes.  The job's user never gets the Docker socket.  A job that is not
a docker job gets HTCondor's own shell setup, unchanged.

    SSH_ORIGINAL_COMMAND unset     a login shell (bash if the image has it, else sh)
    ... = internal-sftp|*sftp-server   the image's sftp-server (sftp, and scp, which uses sftp);
                                   without one, every SFTP request fails with the reason
    ... = anything else            `/bin/sh -c "$SSH_ORIGINAL_COMMAND"` (commands, scp -O, rsync)

The image must have /bin/sh.  sftp/scp need an sftp-server in the image, scp -O
needs scp, rsync needs rsync: when one is missing, the session fails with a
line that names it and the way around it (`condor_ssh_to_job JOB 'cat > f' < f`
or a tar pipe).  Exit status: the command's; 69 when the agent refuses or no
container runs; 75 when the agent does not answer.
"""
from __future__ import annotations

import fcntl
import os
import shlex
import signal as signals
import struct
import sys
import termios
import tty as ttys
from typing import Any

from ..core import exitcodes
from ..core.argparsing import Parser
from ..wire import ops
from ..wire.protocol import AgentClient, AgentUnavailable, Connection, ProtocolError
from ..wire.socketpath import default_help

EX_UNAVAILABLE = exitcodes.UNAVAILABLE   # core/exitcodes.py
EX_TEMPFAIL = exitcodes.TEMPFAIL
SESSION_DIR_PREFIX = ".condor_ssh_to_job_"

LOGIN_SHELL = ("if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l")
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server",
                "/usr/libexec/sftp-server", "/usr/lib/sftp-server", "/usr/local/libexec/sftp-server")
COPY_HINT = "or copy with: condor_ssh_to_job JOB 'cat > FILE' < FILE (or a tar pipe)"
# tools that the client side of scp -O / rsync run in the container
NEEDED_TOOLS = {"scp": "scp -O needs scp in the job's image", "rsync": "rsync needs rsync in the job's image"}
from ..host.fdio import write_all


def _say(text: str) -> None:
    print(f"condor_docker: {text}", file=sys.stderr, flush=True)


def is_sftp(command: str) -> bool:
    """Whether sshd ran us for the sftp subsystem (SSH_ORIGINAL_COMMAND = the subsystem's command)."""
    words = command.split()
    return bool(words) and (words[0] == "internal-sftp" or os.path.basename(words[0]) == "sftp-server")


def _fail_line(text: str) -> str:
    """A shell snippet that prints our line on stderr and exits 127 (the missing-command status)."""
    return f"echo {shlex.quote('condor_docker: ' + text)} >&2; exit 127"


SFTP_MISSING = ("condor_docker: the job's image has no sftp-server, so sftp and scp (which uses sftp) "
                f"cannot reach this container: add openssh-sftp-server to the image, {COPY_HINT}")


def sftp_probe_script() -> str:
    """Prints the path of the image's sftp-server, or nothing (exit 127)."""
    tries = "".join(f"[ -x {p} ] && echo {p} && exit 0; " for p in SFTP_SERVERS)
    return f"{tries}command -v sftp-server || exit 127"


def command_argv(original: str | None) -> list[str]:
    """What runs in the container for this session (see the module doc)."""
    if not original:
        return ["/bin/sh", "-c", LOGIN_SHELL]
    try:
        first = shlex.split(original)[0] if original.strip() else ""
    except ValueError:
        first = ""
    tool = os.path.basename(first)
    if tool in NEEDED_TOOLS:
        check = (f"if ! command -v {tool} >/dev/null 2>&1; then "
                 + _fail_line(f"{NEEDED_TOOLS[tool]} (it has none): add it to the image, {COPY_HINT}") + "; fi; ")
        return ["/bin/sh", "-c", check + original]
    return ["/bin/sh", "-c", original]


def scratch_dir_of(env_file: str | None, env: dict[str, str], cwd: str) -> str:
    """The job's scratch dir: the parent of the sshd session dir, else $_CONDOR_SCRATCH_DIR, else cwd."""
    if env_file:
        session = os.path.dirname(os.path.abspath(env_file))
        if os.path.basename(session).startswith(SESSION_DIR_PREFIX):
            return os.path.dirname(session)
    return os.path.normpath(env.get("_CONDOR_SCRATCH_DIR") or cwd)


def is_docker_job(scratch_dir: str) -> bool:
    """From the scratch dir's .job.ad (the original ad: WantDocker, DockerImage)."""
    from ..core import ads
    from ..core.failures import Failure

    try:
        ad = ads.read_ad_file(os.path.join(scratch_dir, ".job.ad"), "job ad")
        return ads.get_bool(ad, "WantDocker") or ads.get_str(ad, "DockerImage") is not None
    except (Failure, OSError):
        return False


def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("4H", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


class Session:
    """One exec through the agent: request with our fds, relay resizes, wait for the exit code."""

    def __init__(self, client: AgentClient, scratch_dir: str, argv: list[str], tty: bool,
                 fds: tuple[int, int, int] = (0, 1, 2)) -> None:
        self.fds = fds
        self.refusal: str | None = None
        self.client = client
        self.scratch_dir = scratch_dir
        self.argv = argv
        self.tty = tty
        self.connection: Connection | None = None

    def request(self) -> dict:
        size = terminal_size(0) if self.tty else None
        term = os.environ.get("TERM") if self.tty else None
        return ops.Exec(self.scratch_dir, tuple(self.argv), self.tty, rows=size[0] if size else None,
                        cols=size[1] if size else None, term=term or None).to_message()

    def run(self) -> int:
        connection = self.client.connect()
        connection.sock.settimeout(None)
        self.connection = connection
        saved = termios.tcgetattr(0) if self.tty else None
        try:
            connection.send(self.request(), fds=list(self.fds))
            if self.tty:
                signals.signal(signals.SIGWINCH, self._on_resize)
                ttys.setraw(0, termios.TCSANOW)  # keep what was typed already
            final = self._follow(connection)
        except (OSError, ProtocolError) as err:
            raise AgentUnavailable(f"lost the condor_docker agent on {self.client.path}: {err}") from err
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            connection.close()
        if not final.get("ok"):
            failure = final.get("failure") or {}
            self.refusal = f"cannot enter the job's container: {failure.get('reason', 'no reason given')}"
            _say(self.refusal)
            return EX_UNAVAILABLE
        return int(final.get("exit_code", EX_UNAVAILABLE))

    def _follow(self, connection: Connection) -> dict:
        while True:
            message, _ = connection.receive()
            if message is None:
                raise ProtocolError("the agent closed the connection")
            if "ok" in message:
                return message

    def _on_resize(self, _signum: int, _frame: Any) -> None:
        size = terminal_size(0)
        if size and self.connection is not None:
            try:
                self.connection.send(ops.Resize(*size).to_message())
            except OSError:
                pass


def run_sftp(client: AgentClient, scratch: str) -> int:
    """The sftp subsystem: the image's sftp-server in the container, or a refusal sftp shows.

    sshd discards a subsystem's stderr, so a missing sftp-server is reported in
    SFTP itself: every request fails with the reason (sftp prints it).
    """
    read_end, write_end = os.pipe()
    with open(os.devnull, "rb") as devnull:
        probe = Session(client, scratch, ["/bin/sh", "-c", sftp_probe_script()], tty=False,
                        fds=(devnull.fileno(), write_end, devnull.fileno()))
        try:
            code = probe.run()
        finally:
            os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        found = output.read(4096).decode(errors="replace").strip().splitlines()
    if code == 0 and found and found[0].startswith("/"):
        return Session(client, scratch, [found[0]], tty=False).run()
    if probe.refusal:
        return refuse_sftp(f"condor_docker: {probe.refusal}", 0, 1)
    return refuse_sftp(SFTP_MISSING, 0, 1)


SSH_FXP_INIT, SSH_FXP_VERSION, SSH_FXP_STATUS, SSH_FX_FAILURE = 1, 2, 101, 4
MAX_SFTP_PACKET = 1 << 18


def refuse_sftp(reason: str, stdin: int, stdout: int) -> int:
    """Speak just enough SFTP (version 3) to answer every request with `reason`; touches no file."""
    text = reason.encode()
    while True:
        header = _read_exact(stdin, 4)
        length = struct.unpack(">I", header)[0] if header else 0
        body = _read_exact(stdin, length) if 5 <= length <= MAX_SFTP_PACKET else None
        if not body:
            return 1
        if body[0] == SSH_FXP_INIT:
            reply = struct.pack(">BI", SSH_FXP_VERSION, 3)
        else:
            reply = (struct.pack(">B", SSH_FXP_STATUS) + body[1:5] + struct.pack(">II", SSH_FX_FAILURE, len(text))
                     + text + struct.pack(">I", 0))
        write_all(stdout, struct.pack(">I", len(reply)) + reply)


def _read_exact(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _fall_back(shell_setup: list[str]) -> int:
    """Not a docker job: HTCondor's own shell setup (which reads SSH_ORIGINAL_COMMAND itself)."""
    if not shell_setup:
        _say("this job runs no container and no HTCondor shell setup was given")
        return EX_UNAVAILABLE
    try:
        os.execv(shell_setup[0], shell_setup)
    except OSError as err:
        _say(f"HTCondor's shell setup {shell_setup[0]} cannot run ({err.strerror}); "
             "check the ssh_to_job setup path in the startd's configuration")
    return EX_UNAVAILABLE


def main_ssh_shell(argv: list[str] | None = None) -> int:
    parser = Parser(prog="condor_docker ssh-shell", description=__doc__.splitlines()[0])
    socket_option = parser.add_argument("--socket", help="the agent's socket")
    parser.help_when_asked(socket_option, lambda: f"the agent's socket (default: {default_help()})")
    parser.add_argument("--scratch-dir", help="the job's scratch dir (default: from the session env file, "
                                              "$_CONDOR_SCRATCH_DIR, or the current dir)")
    parser.add_argument("shell_setup", nargs="*",
                        help="HTCondor's shell setup and its env file (from _INSERT_FORCE_COMMAND_)")
    args = parser.parse_args(argv)
    env_file = args.shell_setup[1] if len(args.shell_setup) > 1 else None
    scratch = os.path.normpath(args.scratch_dir) if args.scratch_dir else \
        scratch_dir_of(env_file, dict(os.environ), os.getcwd())
    if not is_docker_job(scratch):
        return _fall_back(args.shell_setup)
    original = os.environ.get("SSH_ORIGINAL_COMMAND")
    client = AgentClient(args.socket, timeout=30.0)
    try:
        if original and is_sftp(original):
            return run_sftp(client, scratch)
        return Session(client, scratch, command_argv(original), tty=os.isatty(0)).run()
    except AgentUnavailable as err:
        _say(str(err))
        return EX_TEMPFAIL


main = main_ssh_shell
