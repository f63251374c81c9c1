"""Pool roles without containers: role -> config, injection, the security refusal, health decisions.

The generated config is read back by HTCondor's own reader (htcondor2 in a
subprocess), so a knob HTCondor would not accept fails here, not in a pod.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import classad2
import pytest
from testpaths import FIXTURES, REPO

from condor_docker.pool import (
    entrypoint,
    injection,
    rolehealth,
    roles,
    security,
    sshaccess,
)


def options(role: str = "execute", **changes) -> roles.NodeOptions:
    base = dict(role=role, cm_host="127.0.0.1", cm_port=19618, port=19618 if role == "central-manager" else 19620,
                name=f"{role[:2]}-1", execute_dir="/srv/ep1/execute", network_interface="127.0.0.1",
                release_dir="/opt/htcondor", condor_ids="999.999")
    base.update(changes)
    return roles.NodeOptions(**base)


def read_back(tmp_path, opts: roles.NodeOptions, knobs: list[str], injected=()) -> dict:
    """Write the node's config as pool-node does and ask htcondor2.param for knobs."""
    path = entrypoint.write_config(opts, list(injected), root=str(tmp_path / "pool"))
    code = ("import htcondor2, json, sys; "
            "print(json.dumps({k: str(htcondor2.param.get(k)) for k in sys.argv[1:]}))")
    done = subprocess.run([sys.executable, "-c", code, *knobs], env=dict(os.environ, CONDOR_CONFIG=path),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("role, daemons", [
    ("central-manager", "MASTER, COLLECTOR, NEGOTIATOR"),
    ("access-point", "MASTER, SCHEDD"),
    ("execute", "MASTER, STARTD CONDOR_DOCKER_AGENT"),
])
def test_htcondor_reads_each_roles_daemons_and_pool(tmp_path, role, daemons):
    got = read_back(tmp_path, options(role), ["DAEMON_LIST", "CONDOR_HOST", "COLLECTOR_HOST", "SHARED_PORT_PORT",
                                              "MASTER_NAME", "ALLOW_WRITE", "SEC_DEFAULT_AUTHENTICATION"])
    assert " ".join(got["DAEMON_LIST"].split()) == " ".join(daemons.split())
    assert got["CONDOR_HOST"] == "127.0.0.1" and got["COLLECTOR_HOST"] == "127.0.0.1:19618"
    assert got["SHARED_PORT_PORT"] == ("19618" if role == "central-manager" else "19620")
    assert got["MASTER_NAME"] == f"{role[:2]}-1"
    assert got["ALLOW_WRITE"].strip() != "*" and "*@" in got["ALLOW_WRITE"]
    assert got["SEC_DEFAULT_AUTHENTICATION"].lower() == "required"


def test_execute_role_wires_the_agent_to_the_containers_execute_dir(tmp_path):
    got = read_back(tmp_path, options("execute"), ["EXECUTE", "CONDOR_DOCKER_EXECUTE_DIRS", "DOCKER",
                                                   "STARTER_DEFAULT_JOB_HOOK_KEYWORD", "CONDOR_DOCKER_BIN"])
    assert got["EXECUTE"] == got["CONDOR_DOCKER_EXECUTE_DIRS"] == "/srv/ep1/execute"
    assert got["DOCKER"] == "/nonexistent" and got["STARTER_DEFAULT_JOB_HOOK_KEYWORD"] == "CONDOR_DOCKER"
    assert got["CONDOR_DOCKER_BIN"] == f"{roles.configfiles.PREFIX}/bin/condor_docker"


def test_access_point_gets_the_hold_transform(tmp_path):
    got = read_back(tmp_path, options("access-point"), ["JOB_TRANSFORM_NAMES"])
    assert "CondorDocker" in got["JOB_TRANSFORM_NAMES"]


def test_injected_config_is_read_last_and_wins(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("NEGOTIATOR_INTERVAL = 7\nSHARED_PORT_PORT = 29999\n")
    injected = injection.collect([str(site)])
    got = read_back(tmp_path, options("central-manager"), ["NEGOTIATOR_INTERVAL", "SHARED_PORT_PORT"], injected)
    assert got == {"NEGOTIATOR_INTERVAL": "7", "SHARED_PORT_PORT": "29999"}


def test_insecure_is_explicit_and_says_so(tmp_path):
    got = read_back(tmp_path, options("access-point", insecure=True), ["ALLOW_WRITE", "SEC_DEFAULT_AUTHENTICATION"])
    assert got["SEC_DEFAULT_AUTHENTICATION"] == "OPTIONAL"
    assert "throwaway demo" in roles.security_config(options(insecure=True))


@pytest.mark.parametrize("text, expected", [("cm.example.org", ("cm.example.org", 9618)),
                                            ("127.0.0.1:19618", ("127.0.0.1", 19618))])
def test_central_manager_parsing(text, expected):
    assert roles.parse_central_manager(text) == expected


@pytest.mark.parametrize("text, words", [("", "no central manager"), ("cm:0", "port '0'"),
                                         ("cm:http", "port 'http'"), ("bad host:1", "not a host name")])
def test_central_manager_errors_name_the_problem(text, words):
    with pytest.raises(roles.RoleError, match=words):
        roles.parse_central_manager(text)


@pytest.mark.parametrize("changes, words", [
    ({"role": "worker"}, "not a pool role"),
    ({"role": "central-manager", "port": 19700}, "listens on the port of --central-manager"),
    ({"name": "a b"}, "--name 'a b'"),
    ({"execute_dir": "relative"}, "absolute path"),
])
def test_bad_options_are_refused_with_the_fix(changes, words):
    with pytest.raises(roles.RoleError, match=words):
        roles.validate(options(**changes))


def test_directory_injection_is_sorted_and_skips_backups_and_configmap_internals(tmp_path):
    d = tmp_path / "site"
    (d / "..data").mkdir(parents=True)
    (d / "20-b.conf").write_text("B = 2\n")
    (d / "10-a.conf").write_text("A = 1\n")
    (d / "10-a.conf~").write_text("A = old\n")
    (d / ".hidden").write_text("H = 1\n")
    found = injection.collect([str(d)])
    assert [f.name for f in found] == ["90-injected-00-10-a.conf", "90-injected-01-20-b.conf"]
    assert "from " + str(d / "10-a.conf") in injection.rendered(found[0])


def test_url_injection_fetches_and_reports_http_errors(tmp_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/pool.conf":
                body = b"SITE_KNOB = from_url\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        pin = "#sha256=" + hashlib.sha256(b"SITE_KNOB = from_url\n").hexdigest()  # plain http needs a pin
        [item] = injection.collect([f"{base}/pool.conf{pin}"], timeout=5)
        assert item.text == "SITE_KNOB = from_url\n" and item.name == "90-injected-00-pool.conf"
        with pytest.raises(injection.InjectionError, match="answered 404"):
            injection.collect([f"{base}/missing.conf{pin}"], timeout=5)
    finally:
        server.shutdown()


def test_unreachable_url_fails_within_the_timeout():
    # a port nobody listens on, on loopback: refused at once
    with pytest.raises(injection.InjectionError, match="cannot fetch injected config .* within 2 s"):
        injection.collect(["https://127.0.0.1:9/pool.conf"], timeout=2)


@pytest.mark.parametrize("source, words", [("/nonexistent/site.conf", "does not exist"),
                                           ("ftp://x/y", "only http:// and https://")])
def test_bad_sources_name_themselves(source, words):
    with pytest.raises(injection.InjectionError, match=words):
        injection.collect([source])


def test_no_secret_is_a_refusal_that_mentions_insecure(tmp_path):
    with pytest.raises(security.SecurityError, match="refusing to start: no pool secret .*--insecure"):
        security.read_secret(str(tmp_path / "absent"))
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(security.SecurityError, match="at least 16 random bytes"):
        security.read_secret(str(short))


def test_pool_node_refuses_to_start_without_a_secret(tmp_path):
    """The real entry point, end to end up to the refusal: exit 2 and the reason on stderr."""
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", CONDOR_DOCKER_POOL_RELEASE_DIR="/opt/htcondor")
    done = subprocess.run([sys.executable, "-m", "condor_docker.cli", "pool-node", "--role", "access-point",
                           "--central-manager", "127.0.0.1:19618", "--password-file", str(tmp_path / "none"),
                           "--name", "ap-x"], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    if "no 'condor' account" in done.stderr:
        pytest.skip("no condor account on this machine")
    assert done.returncode == 2, done.stderr
    assert "refusing to start: no pool secret" in done.stderr and "--insecure" in done.stderr


def test_sshd_config_refuses_root_and_passwords_by_default():
    text = sshaccess.sshd_config(sshaccess.SshOptions(user="alice", authorized_keys="/k", port=2200))
    assert "PermitRootLogin no" in text and "PasswordAuthentication no" in text and "AllowUsers alice" in text
    assert "PasswordAuthentication yes" in sshaccess.sshd_config(
        sshaccess.SshOptions(user="alice", authorized_keys="/k", allow_password=True, password_file="/p"))
    with pytest.raises(sshaccess.SshError, match="root is refused"):
        sshaccess.validate(sshaccess.SshOptions(user="root", authorized_keys="/k"))
    with pytest.raises(sshaccess.SshError, match="needs --ssh-password-file"):
        sshaccess.validate(sshaccess.SshOptions(user="alice", authorized_keys="/k", allow_password=True))


# -- health decisions -------------------------------------------------------------------
EP_PROCESSES = ("condor_master", "condor_shared_port", "condor_startd", rolehealth.AGENT_PROCESS)


def real_slot(name: str, **attrs) -> dict:
    """The real machine ad from the fixtures, renamed to this node, evaluated as the probe does."""
    ad = classad2.parseOne(open(os.path.join(FIXTURES, "machine.ad")).read())
    ad["Name"] = f"slot1@{name}@host"
    for key, value in attrs.items():
        ad[key] = value
    return {key: ad.eval(key) if key in ad else None for key in ("Name", "HasDocker", "DockerOfflineReason")}


def test_execute_healthy_from_a_real_slot_ad():
    seen = rolehealth.Observation(EP_PROCESSES, {"Startd": [real_slot("ep-1")]}, agent_reply={"healthy": True})
    ok, line = rolehealth.evaluate("execute", "ep-1", seen)
    assert ok, line


@pytest.mark.parametrize("change, words", [
    ({"processes": EP_PROCESSES[:2] + EP_PROCESSES[3:]}, "not running: condor_startd"),
    ({"processes": EP_PROCESSES[:3]}, "not running: condor_docker agent"),
    ({"ads": {"Startd": []}}, "no startd slot ad named ep-1"),
    ({"collector_error": "connection refused"}, "cannot query the collector: connection refused"),
    ({"agent_reply": {"healthy": False, "reason": "engine gone"}}, "engine unusable: engine gone"),
    ({"agent_reply": None, "agent_error": "no socket"}, "agent does not answer: no socket"),
])
def test_execute_unhealthy_says_what_is_wrong(change, words):
    fields = dict(processes=EP_PROCESSES, ads={"Startd": [real_slot("ep-1")]}, agent_reply={"healthy": True})
    fields.update(change)
    ok, line = rolehealth.evaluate("execute", "ep-1", rolehealth.Observation(**fields))
    assert not ok and words in line and "\n" not in line


def test_hasdocker_false_reports_the_offline_reason():
    slot = real_slot("ep-1", HasDocker=False, DockerOfflineReason="Docker engine does not answer")
    seen = rolehealth.Observation(EP_PROCESSES, {"Startd": [slot]}, agent_reply={"healthy": True})
    ok, line = rolehealth.evaluate("execute", "ep-1", seen)
    assert not ok and "HasDocker is not true: Docker engine does not answer" in line


def test_another_nodes_ads_do_not_count():
    seen = rolehealth.Observation(("condor_master", "condor_shared_port", "condor_schedd"),
                                  {"Schedd": [{"Name": "ap-10@host"}, {"Name": "xap-1@host"}]})
    assert not rolehealth.evaluate("access-point", "ap-1", seen)[0]
    seen = rolehealth.Observation(seen.processes, {"Schedd": [{"Name": "ap-1@host"}]})
    assert rolehealth.evaluate("access-point", "ap-1", seen)[0]
