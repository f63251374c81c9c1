"""Root in the pool-node images against their users (docs/TRUST-MODEL.md, docs/POOL-IN-CONTAINERS.md).

Each test attacks what pool-node does as root at start: the execute role's defaults,
the pool secret's owner and mode, injected config and authorized keys fetched over the
network, and the ssh user's home.  The hostile steps run as the real unprivileged
users (cdtest1/cdtest2), the pool-node code as root, as in the image.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from types import SimpleNamespace

import pytest
from testpaths import REPO

from condor_docker.core import settings, spec
from condor_docker.core.failures import Failure
from condor_docker.pool import entrypoint, injection, roles, security, sshaccess

PYTHON = "/opt/condor_docker/venv/bin/python"
TEST_ROOT = "/var/lib/condor_docker-test"


@pytest.fixture
def sandbox():
    """A root-owned 0755 directory the test users can traverse (tmp_path is root's 0700)."""
    os.makedirs(TEST_ROOT, 0o755, exist_ok=True)
    path = tempfile.mkdtemp(prefix="pool-trust-", dir=TEST_ROOT)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def as_user(run_as):
    """as_user(user, code, *args) -> stdout of `python -c code args` run as that real user."""
    def run(user: str, code: str, *args: str, timeout: float = 60) -> str:
        process = run_as(user, [PYTHON, "-c", code, *args], env={"PATH": "/usr/bin:/bin"}, cwd="/",
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()
    return run


_ENTRY = """import sys
from condor_docker.core import settings, spec
from condor_docker.core.failures import Failure
from condor_docker.pool import entrypoint
root = sys.argv[1]
entrypoint.CONFIG_ROOT = root + "/config"
entrypoint.write_config.__defaults__ = (root + "/config",)
sys.exit(entrypoint.main_pool_node(["--local-dir", root + "/local", *sys.argv[2:]]))
"""


def pool_node(root: str, *args: str, timeout: float = 90, **env_changes: str) -> subprocess.CompletedProcess:
    """The real entry point as root, its config and local dir kept in `root` (not this machine's /etc).

    PATH is an empty directory: no HTCondor tool (condor_token_create writes /etc/condor) can run here.
    """
    empty = os.path.join(root, "empty-bin")
    os.makedirs(empty, exist_ok=True)
    env = dict(os.environ, CONDOR_DOCKER_POOL_RELEASE_DIR="/opt/htcondor", PYTHONPATH=REPO, PATH=empty)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", _ENTRY, root, *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)


def one_line_refusal(done: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, and the one line of stderr says each of `words`."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    [line] = [text for text in done.stderr.splitlines() if text.startswith("condor_docker pool-node: ")]
    for word in words:
        assert word in line, line
    return line


def node(role: str = "execute", **changes) -> roles.NodeOptions:
    base = {"role": role, "cm_host": "127.0.0.1", "cm_port": 19618, "port": 19620, "name": "ep-trust",
            "execute_dir": "/srv/ep1/execute", "network_interface": "127.0.0.1", "release_dir": "/opt/htcondor",
            "condor_ids": "999.999"}
    base.update(changes)
    return roles.NodeOptions(**base)


def htcondor_reads(tmp_path, options: roles.NodeOptions, knobs: list[str], injected=()) -> dict:
    """Write the node's config as pool-node does; HTCondor's own reader answers for the knobs."""
    path = entrypoint.write_config(options, list(injected), root=str(tmp_path / "pool"))
    code = ("import htcondor2, json, sys; "
            "print(json.dumps({k: str(htcondor2.param.get(k)) for k in sys.argv[1:]}))")
    done = subprocess.run([sys.executable, "-c", code, *knobs], env=dict(os.environ, CONDOR_CONFIG=path),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- 11: the execute role's defaults ---------------------------------------------------------
def test_pool_execute_role_refuses_host_network_and_requires_the_starter_proof(tmp_path):
    text = roles.role_config_d(node())["60-pool-node-execute.conf"]
    assert "CONDOR_DOCKER_ALLOW_HOST_NETWORK = false" in text.splitlines()
    assert "CONDOR_DOCKER_REQUIRE_STARTER = true" in text.splitlines()
    got = htcondor_reads(tmp_path, node(), ["CONDOR_DOCKER_ALLOW_HOST_NETWORK", "CONDOR_DOCKER_REQUIRE_STARTER"])
    assert got["CONDOR_DOCKER_ALLOW_HOST_NETWORK"].lower() == "false"
    assert got["CONDOR_DOCKER_REQUIRE_STARTER"].lower() == "true"
    agent = settings.load_settings(got.get)  # what the node's agent makes of it
    assert not agent.allow_host_network and agent.require_starter
    with pytest.raises(Failure, match="docker_network_type = host is not allowed"):
        spec.network_mode(SimpleNamespace(network_type="host"), agent)


def test_a_site_can_still_allow_host_network_through_injected_config(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("CONDOR_DOCKER_ALLOW_HOST_NETWORK = true\nCONDOR_DOCKER_REQUIRE_STARTER = false\n")
    got = htcondor_reads(tmp_path, node(), ["CONDOR_DOCKER_ALLOW_HOST_NETWORK", "CONDOR_DOCKER_REQUIRE_STARTER"],
                         injection.collect([str(site)]))
    assert got == {"CONDOR_DOCKER_ALLOW_HOST_NETWORK": "true", "CONDOR_DOCKER_REQUIRE_STARTER": "false"}


@pytest.mark.parametrize("role", ["central-manager", "access-point"])
def test_other_roles_do_not_get_execute_knobs(role):
    files = roles.role_config_d(node(role, port=19618 if role == "central-manager" else 19620))
    assert not any("CONDOR_DOCKER_ALLOW_HOST_NETWORK" in text for text in files.values())


# -- 9: the mounted pool secret ---------------------------------------------------------------
SECRET = secrets.token_urlsafe(32)


def root_file(path: str, text: str, mode: int = 0o600) -> str:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def test_a_secret_other_users_can_read_is_refused(sandbox, as_user):
    path = root_file(os.path.join(sandbox, "pool-password"), SECRET, 0o644)
    assert as_user("cdtest1", "import sys; print(open(sys.argv[1]).read())", path).strip() == SECRET  # the threat
    with pytest.raises(security.SecurityError, match=r"readable or writable by group or other.*chmod 0600"):
        security.read_secret(path)


def test_a_secret_owned_by_a_user_is_refused(sandbox, test_users, as_user):
    path = root_file(os.path.join(sandbox, "pool-password"), SECRET, 0o600)
    os.chown(path, *test_users["cdtest1"])
    as_user("cdtest1", "import sys; open(sys.argv[1], 'w').write('chosen-by-the-user-0123456789')", path)
    with pytest.raises(security.SecurityError, match=r"owned by uid \d+, not root.*chown root"):
        security.read_secret(path)


def test_a_secret_reached_through_a_users_link_is_refused(sandbox, test_users, as_user):
    """The user's own directory, a link in it to a root-only file whose text they know."""
    known = root_file(os.path.join(sandbox, "known"), "a-root-only-file-the-user-knows\n", 0o600)
    theirs = os.path.join(sandbox, "theirs")
    os.mkdir(theirs, 0o755)
    os.chown(theirs, *test_users["cdtest1"])
    as_user("cdtest1", "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", known,
            os.path.join(theirs, "pool-password"))
    with pytest.raises(security.SecurityError, match=r"not root-owned|writable by group or other"):
        security.read_secret(os.path.join(theirs, "pool-password"))


def test_a_kubernetes_secret_volume_is_accepted(sandbox):
    """kubelet's layout: pool-password -> ..data/pool-password, ..data -> ..<timestamp>, all root's, 0400."""
    stamp = os.path.join(sandbox, "..2026_12_02_13_00_00.1")
    os.mkdir(stamp, 0o755)
    root_file(os.path.join(stamp, "pool-password"), SECRET + "\n", 0o400)
    os.symlink(os.path.basename(stamp), os.path.join(sandbox, "..data"))
    os.symlink("..data/pool-password", os.path.join(sandbox, "pool-password"))
    assert security.read_secret(os.path.join(sandbox, "pool-password")) == SECRET.encode()


def test_a_secret_that_is_not_a_regular_file_is_refused_without_blocking(sandbox):
    fifo = os.path.join(sandbox, "pool-password")
    os.mkfifo(fifo, 0o600)
    with pytest.raises(security.SecurityError, match="not a regular file"):
        security.read_secret(fifo)


@pytest.mark.parametrize("mode, words", [(0o644, "chmod 0600"), (0o600, "chown root")])
def test_pool_node_refuses_a_bad_secret_in_one_line(sandbox, test_users, mode, words):
    path = root_file(os.path.join(sandbox, "pool-password"), SECRET, mode)
    if words == "chown root":
        os.chown(path, *test_users["cdtest2"])
    done = pool_node(sandbox, "--role", "access-point", "--central-manager", "127.0.0.1:19618", "--name", "ap-trust",
                     "--password-file", path)
    one_line_refusal(done, path, words)


# -- 8: injected config and authorized keys from the network ---------------------------------
BODY = b"SITE_KNOB = from_the_server\n"


@pytest.fixture
def config_server():
    """A local http server: /ok.conf, /trickle-body.conf and /trickle-head.conf (one byte a second)."""
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/ok.conf":
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY)
                return
            if self.path == "/moved.conf":
                self.send_response(302)
                self.send_header("Location", "/ok.conf")
                self.end_headers()
                return
            if self.path not in ("/trickle-body.conf", "/trickle-head.conf"):
                self.send_error(404)
                return
            if self.path == "/trickle-head.conf":
                head = b"HTTP/1.0 200 OK\r\nContent-Length: 600\r\n" + b"X-Slow: " + b"s" * 600 + b"\r\n\r\n"
            else:
                self.send_response(200)
                self.send_header("Content-Length", "600")
                self.end_headers()
                head = b"#" * 600
            for byte in head:
                if stop.wait(1.0):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()


def pinned(url: str, body: bytes = BODY) -> str:
    return f"{url}#sha256={hashlib.sha256(body).hexdigest()}"


def good_secret(sandbox: str) -> str:
    return root_file(os.path.join(sandbox, "pool-password"), SECRET, 0o600)


@pytest.mark.parametrize("where", ["trickle-body", "trickle-head"])
def test_a_trickling_config_server_cannot_stall_startup(sandbox, config_server, where):
    """One byte a second resets a per-read timeout forever: the deadline is for the whole transfer."""
    url = pinned(f"{config_server}/{where}.conf")
    started = time.monotonic()
    try:
        done = pool_node(sandbox, "--role", "central-manager", "--central-manager", "127.0.0.1:19618",
                         "--password-file", good_secret(sandbox), "--config", url, "--config-timeout", "3",
                         timeout=40)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pool-node was still fetching {url} after 40 s (--config-timeout 3)")
    elapsed = time.monotonic() - started
    one_line_refusal(done, f"cannot fetch injected config {url} within 3 s")
    assert elapsed < 15, elapsed


def test_plain_http_without_a_pin_is_refused_before_anything_is_fetched(config_server):
    with pytest.raises(injection.InjectionError, match=r"plain http:// is refused.*https://.*#sha256="):
        injection.collect([f"{config_server}/ok.conf"], timeout=5)


def test_a_pinned_http_url_is_fetched_and_its_digest_checked(config_server):
    [item] = injection.collect([pinned(f"{config_server}/ok.conf")], timeout=5)
    assert item.text == BODY.decode() and item.name == "90-injected-00-ok.conf"
    wrong = pinned(f"{config_server}/ok.conf", b"something else")
    with pytest.raises(injection.InjectionError, match="its sha256 is .*not the pinned"):
        injection.collect([wrong], timeout=5)


def test_a_redirect_is_not_followed(config_server):
    with pytest.raises(injection.InjectionError, match="answered 302"):
        injection.collect([pinned(f"{config_server}/moved.conf")], timeout=5)


def test_a_digest_mismatch_stops_pool_node_in_one_line(sandbox, config_server):
    wrong = pinned(f"{config_server}/ok.conf", b"not what the server sends")
    done = pool_node(sandbox, "--role", "central-manager", "--central-manager", "127.0.0.1:19618",
                     "--password-file", good_secret(sandbox), "--config", wrong, "--config-timeout", "5")
    one_line_refusal(done, wrong, "not the pinned")


def test_authorized_keys_over_plain_http_are_refused(config_server):
    with pytest.raises(sshaccess.SshError, match=r"authorized keys .*plain http:// is refused"):
        sshaccess._authorized_keys(f"{config_server}/ok.conf")
    with pytest.raises(sshaccess.SshError, match="not the pinned"):
        sshaccess._authorized_keys(pinned(f"{config_server}/ok.conf", b"other keys"))


# -- 5: the access point's ssh user's home -----------------------------------------------------
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv4LJwXmTJYXmF3N4tRwPNdjUWUMDZEUP7FBOHD3Jcv admin@site\n"


@pytest.fixture
def ssh_node(sandbox, test_users, monkeypatch):
    """sshaccess.prepare as root, for cdtest1 whose home is <sandbox>/home (theirs, 0755), off this machine's
    /etc and /run: the image's commands (passwd, usermod, ssh-keygen) are recorded, not run."""
    uid, gid = test_users["cdtest1"]
    home = os.path.join(sandbox, "home")
    os.mkdir(home, 0o755)
    os.chown(home, uid, gid)
    keys = root_file(os.path.join(sandbox, "admin-keys.pub"), KEY, 0o644)
    real = pwd.getpwnam("cdtest1")
    account = pwd.struct_passwd((real.pw_name, "x", uid, gid, "", home, "/bin/sh"))
    monkeypatch.setattr(sshaccess, "SSHD", sys.executable)
    monkeypatch.setattr(sshaccess, "CONFIG_PATH", os.path.join(sandbox, "etc", "sshd_config"))
    monkeypatch.setattr(sshaccess, "PRIVSEP_DIR", os.path.join(sandbox, "run-sshd"), raising=False)
    monkeypatch.setattr(sshaccess.pwd, "getpwnam",
                        lambda name: account if name == "cdtest1" else pytest.fail(f"getpwnam({name})"))
    ran: list[list[str]] = []

    def fake_run(argv, *args, **kwargs):
        ran.append(list(argv))
        if argv[0] not in ("passwd", "usermod", "ssh-keygen"):
            pytest.fail(f"unexpected command {argv}")
        return subprocess.CompletedProcess(argv, 0, stdout=f"{argv[-1]} P 2026-12-01 0 99999 7 -1\n", stderr="")
    monkeypatch.setattr(sshaccess.subprocess, "run", fake_run)

    def prepare() -> list[str]:
        return sshaccess.prepare(sshaccess.SshOptions(user="cdtest1", authorized_keys=keys))
    return home, prepare


@pytest.fixture
def victim(sandbox):
    """A root-owned directory with a root-only file: what the user would like root to hand them."""
    path = os.path.join(sandbox, "victim")
    os.mkdir(path, 0o755)
    root_file(os.path.join(path, "shadow"), "root:only:\n", 0o600)
    return path


def untouched(victim: str) -> None:
    st = os.lstat(victim)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755), "the victim dir was chowned/chmodded"
    assert sorted(os.listdir(victim)) == ["shadow"], os.listdir(victim)
    shadow = os.path.join(victim, "shadow")
    st = os.lstat(shadow)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), "the root-only file was chowned"
    with open(shadow) as stream:
        assert stream.read() == "root:only:\n", "the root-only file was overwritten"


def installed(home: str, uid: int) -> None:
    ssh = os.path.join(home, ".ssh")
    st = os.lstat(ssh)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700
    keys = os.path.join(ssh, "authorized_keys")
    st = os.lstat(keys)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o600
    with open(keys) as stream:
        assert stream.read() == KEY
    assert os.listdir(ssh) == ["authorized_keys"]  # no temp file left


def test_ssh_dir_replaced_by_a_link_to_a_root_dir(ssh_node, victim, as_user, test_users):
    home, prepare = ssh_node
    prepare()                     # the first start
    installed(home, test_users["cdtest1"][0])
    as_user("cdtest1", "import os, shutil, sys; shutil.rmtree(sys.argv[1] + '/.ssh'); "
                       "os.symlink(sys.argv[2], sys.argv[1] + '/.ssh')", home, victim)
    prepare()                     # the restart, the home kept
    untouched(victim)
    installed(home, test_users["cdtest1"][0])


def test_authorized_keys_replaced_by_a_link_to_a_root_file(ssh_node, victim, as_user, test_users):
    home, prepare = ssh_node
    prepare()
    as_user("cdtest1", "import os, sys; os.unlink(sys.argv[1] + '/.ssh/authorized_keys'); "
                       "os.symlink(sys.argv[2] + '/shadow', sys.argv[1] + '/.ssh/authorized_keys')", home, victim)
    prepare()
    untouched(victim)
    installed(home, test_users["cdtest1"][0])


def test_a_racing_user_flipping_ssh_between_a_dir_and_a_link(ssh_node, victim, run_as, test_users, caplog):
    home, prepare = ssh_node
    prepare()
    flipper = run_as("cdtest1", [PYTHON, "-c", """
import os, shutil, sys, time
home, victim = sys.argv[1], sys.argv[2]
ssh = home + "/.ssh"
flips = errors = 0
end = time.monotonic() + 6
while time.monotonic() < end:
    parked = f"{home}/.ssh-{flips}"
    try:
        os.rename(ssh, parked)
        os.symlink(victim, ssh)
        time.sleep(0.0005)
        os.unlink(ssh)
        os.rename(parked, ssh)
        flips += 1
    except OSError:
        errors += 1
        if os.path.islink(ssh):
            os.unlink(ssh)
        if os.path.isdir(parked):
            shutil.rmtree(parked, ignore_errors=True)
print(flips, errors)
""", home, victim], env={"PATH": "/usr/bin:/bin"}, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    outcomes = {"installed": 0, "refused": 0}
    try:
        while flipper.poll() is None:
            try:
                prepare()
                outcomes["installed"] += 1
            except sshaccess.SshError:
                outcomes["refused"] += 1      # a refusal is fine: touching the victim is not
            untouched(victim)
        flips, errors = map(int, flipper.stdout.read().split())
    finally:
        if flipper.poll() is None:
            flipper.kill()
        flipper.wait(timeout=10)
    untouched(victim)
    assert outcomes["installed"] > 0, outcomes
    met_a_link = sum("is a link or not a directory" in record.getMessage() for record in caplog.records)
    print(outcomes, "links met:", met_a_link, "flips:", flips, "errors:", errors)
    assert flips > 100 and met_a_link > 0, (flips, met_a_link)


def test_a_home_that_is_not_the_users_is_refused(ssh_node, test_users, victim):
    home, prepare = ssh_node
    os.chown(home, *test_users["cdtest2"])
    with pytest.raises(sshaccess.SshError, match=r"home .* is owned by uid \d+, not cdtest1"):
        prepare()
    assert not os.path.lexists(os.path.join(home, ".ssh"))


def test_a_home_that_is_a_link_is_refused(ssh_node, sandbox, victim, monkeypatch):
    home, prepare = ssh_node
    os.rename(home, home + ".real")
    os.symlink(victim, home)
    with pytest.raises(sshaccess.SshError, match=r"home .* is a symbolic link"):
        prepare()
    untouched(victim)


# -- every bad input: one line and exit 2, never a traceback -----------------------------------
def test_no_htcondor_on_path_is_one_line(sandbox):
    try:
        pwd.getpwnam("condor")
    except KeyError:
        pytest.skip("no condor account on this machine")
    done = pool_node(sandbox, "--role", "central-manager", "--central-manager", "127.0.0.1:19618",
                     "--password-file", good_secret(sandbox))
    one_line_refusal(done, "cannot run condor_config_val", "on PATH")


@pytest.mark.parametrize("name, value, words", [("CONFIG_TIMEOUT", "soon", "not a number of seconds"),
                                                ("CONFIG_TIMEOUT", "inf", "above 0 to 86400"),
                                                ("SSH_PORT", "ssh", "port 'ssh'")])
def test_a_bad_number_in_the_environment_is_one_line(sandbox, name, value, words):
    done = pool_node(sandbox, "--role", "central-manager", "--central-manager", "127.0.0.1:19618",
                     **{f"CONDOR_DOCKER_POOL_{name}": value})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert words in done.stderr.strip().splitlines()[-1], done.stderr
