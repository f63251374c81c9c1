"""condor_ssh_to_job pieces that need no engine: what a session runs, where its job is, what the agent accepts."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from condor_docker.agent.exec_op import check_exec_user
from condor_docker.core import configfiles
from condor_docker.core.failures import Failure
from condor_docker.starter import ssh_shell
from condor_docker.wire.ops import BadRequest, Exec


def test_template_forces_ssh_shell_and_keeps_htcondors_markers():
    text = configfiles.sshd_config_template("/x/bin/condor_docker", "/run/x.sock")
    lines = text.splitlines()
    assert "ForceCommand /x/bin/condor_docker ssh-shell --socket /run/x.sock _INSERT_FORCE_COMMAND_" in lines
    assert "HostKey _INSERT_HOST_KEY_" in lines and "AuthorizedKeysFile _INSERT_AUTHORIZED_KEYS_FILE_" in lines
    assert "AllowTcpForwarding no" in lines and "X11Forwarding no" in lines


def test_template_is_valid_for_the_real_sshd(tmp_path):
    sshd = Path("/usr/sbin/sshd")
    if not sshd.exists():
        pytest.skip("openssh-server is not installed (scripts/ssh-deps.sh)")
    if not Path("/run/sshd").is_dir():
        pytest.skip("sshd -t needs /run/sshd (scripts/ssh-deps.sh makes it)")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True)
    config = tmp_path / "sshd_config"
    config.write_text(configfiles.sshd_config_template().replace("_INSERT_HOST_KEY_", str(key))
                      .replace("_INSERT_AUTHORIZED_KEYS_FILE_", str(tmp_path / "authorized_keys"))
                      .replace("_INSERT_FORCE_COMMAND_", f"/usr/libexec/condor_ssh_to_job_shell_setup {tmp_path}/env.sh"))
    result = subprocess.run([str(sshd), "-t", "-f", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_execute_config_points_the_starter_at_the_template():
    assert ("SSH_TO_JOB_SSHD_CONFIG_TEMPLATE = $DIRNAME(CONDOR_DOCKER_AGENT_SOCKET)"
            "ssh_to_job_sshd_config_template" in configfiles.execute_point_config().splitlines())


@pytest.mark.parametrize("original, expected_end", [
    (None, "exec /bin/sh -l"),
    ("", "exec /bin/sh -l"),
    ("ls -l; exit 3", "ls -l; exit 3"),
])
def test_shell_and_commands_run_through_sh(original, expected_end):
    argv = ssh_shell.command_argv(original)
    assert argv[:2] == ["/bin/sh", "-c"] and argv[2].endswith(expected_end)


@pytest.mark.parametrize("original", ["internal-sftp", "/usr/lib/openssh/sftp-server",
                                      "/usr/libexec/openssh/sftp-server -l INFO"])
def test_sftp_subsystem_is_recognised(original):
    assert ssh_shell.is_sftp(original)
    assert "[ -x /usr/lib/openssh/sftp-server ] && echo /usr/lib/openssh/sftp-server" in ssh_shell.sftp_probe_script()


def test_scp_and_rsync_are_checked_for_in_the_image():
    script = ssh_shell.command_argv("scp -t -- dest/")[2]
    assert script.startswith("if ! command -v scp ") and script.endswith("; scp -t -- dest/")
    assert "command -v rsync" in ssh_shell.command_argv("rsync --server -e.Lsfx . d/")[2]
    assert not ssh_shell.is_sftp("sftpx")


def test_failure_lines_survive_the_shell():
    script = ssh_shell.command_argv("rsync --server . d/")[2].replace("command -v rsync", "false")
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 127
    assert "rsync needs rsync in the job's image" in result.stderr
    assert "condor_ssh_to_job JOB 'cat > FILE' < FILE" in result.stderr


def sftp_packet(kind: int, payload: bytes) -> bytes:
    body = bytes([kind]) + payload
    return struct.pack(">I", len(body)) + body


def read_sftp_replies(data: bytes) -> list[bytes]:
    replies = []
    while data:
        length = struct.unpack(">I", data[:4])[0]
        replies.append(data[4:4 + length])
        data = data[4 + length:]
    return replies


def test_sftp_refusal_answers_init_then_fails_every_request_with_the_reason(tmp_path):
    requests = sftp_packet(1, struct.pack(">I", 3)) + sftp_packet(16, struct.pack(">I", 7) + b"\0\0\0\x01.")
    stdin, stdout = tmp_path / "in", tmp_path / "out"
    stdin.write_bytes(requests)
    with open(stdin, "rb") as source, open(stdout, "wb") as sink:
        assert ssh_shell.refuse_sftp("no sftp-server here", source.fileno(), sink.fileno()) == 1
    version, status = read_sftp_replies(stdout.read_bytes())
    assert version == struct.pack(">BI", 2, 3)
    assert status[0] == 101 and struct.unpack(">II", status[1:9]) == (7, 4)
    assert b"no sftp-server here" in status


def test_scratch_dir_comes_from_the_session_dir_then_env_then_cwd():
    env_file = "/var/lib/condor/execute/dir_42/.condor_ssh_to_job_1/env.sh"
    assert ssh_shell.scratch_dir_of(env_file, {}, "/") == "/var/lib/condor/execute/dir_42"
    assert ssh_shell.scratch_dir_of("/elsewhere/env.sh", {"_CONDOR_SCRATCH_DIR": "/s/d/"}, "/") == "/s/d"
    assert ssh_shell.scratch_dir_of(None, {}, "/cwd") == "/cwd"


def test_docker_job_is_read_from_the_original_job_ad(tmp_path):
    assert not ssh_shell.is_docker_job(str(tmp_path))
    (tmp_path / ".job.ad").write_text('Cmd = "/bin/sleep"\nWantDocker = false\n')
    assert not ssh_shell.is_docker_job(str(tmp_path))
    (tmp_path / ".job.ad").write_text('Cmd = "/bin/sh"\nWantDocker = true\nDockerImage = "x:1"\n')
    assert ssh_shell.is_docker_job(str(tmp_path))


def test_agent_accepts_a_well_formed_exec_request():
    request = Exec.from_message({"scratch_dir": "/s", "argv": ["sh", "-c", "id"], "tty": True, "rows": 24,
                                 "cols": 80, "term": "xterm-256color"})
    assert (request.argv, request.tty, request.size, request.term) == (("sh", "-c", "id"), True, (24, 80),
                                                                       "xterm-256color")
    assert Exec.from_message({"scratch_dir": "/s", "argv": ["id"], "term": "xterm"}).term is None  # no terminal


@pytest.mark.parametrize("message, names", [
    ({"argv": []}, "argv"),
    ({"argv": "id"}, "argv"),
    ({"argv": ["a\0b"]}, "NUL"),
    ({"argv": ["id"], "tty": "yes"}, "tty"),
    ({"argv": ["id"], "tty": True, "rows": -1, "cols": 80}, "terminal size"),
    ({"argv": ["id"], "tty": True, "term": "x; rm -rf /"}, "terminal type"),
])
def test_agent_refuses_malformed_exec_requests(message, names):
    with pytest.raises(BadRequest) as caught:
        Exec.from_message({"scratch_dir": "/s", **message})
    assert names in str(caught.value)


def test_agent_execs_only_as_the_containers_own_user_who_is_the_peer():
    assert check_exec_user(1001, "c", "1001:1001") == "1001:1001"
    for user in ("1002:1002", "0:0", "1001:0", "", "root"):
        with pytest.raises(Failure, match="refused"):
            check_exec_user(1001, "c", user)


def test_agent_writes_the_template_beside_its_socket(tmp_path):
    import os

    from condor_docker.agent.exec_op import install_sshd_template

    if os.geteuid() != 0:
        pytest.skip("the socket dir must be root's")
    run_dir = tmp_path / "run"
    socket_path = str(run_dir / "agent.sock")
    path = install_sshd_template(socket_path)
    assert path == str(run_dir / configfiles.SSHD_TEMPLATE_NAME)
    text = Path(path).read_text()
    assert f"ssh-shell --socket {socket_path} _INSERT_FORCE_COMMAND_" in text
    assert oct(os.stat(path).st_mode & 0o777) == "0o644" and not (run_dir / (path + ".partial")).exists()
    (run_dir / "planted").write_text("x")
    os.unlink(path)
    os.symlink(run_dir / "planted", path)          # a link where the template goes is replaced, not followed
    assert install_sshd_template(socket_path) == path
    assert not os.path.islink(path) and (run_dir / "planted").read_text() == "x"
