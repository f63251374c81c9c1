"""wire/ops.py: every op's request round-trips, each field's type and bound is refused naming it,
unknown fields are ignored, and no bytes a peer can send get anything but BadRequest out of it."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from condor_docker.wire import ops, socketpath

REPO = Path(__file__).resolve().parents[3]

SAMPLES: list[ops.Request] = [
    ops.Ping(), ops.MachineAttrs(), ops.Status(), ops.AdminStatus(),
    ops.Prepare("/var/lib/condor/execute/dir_1", 'ClusterId = 1\nDockerImage = "busybox"\n', progress=True),
    ops.Prepare("/var/lib/condor/execute/dir_1", None),
    ops.Launch("/var/lib/condor/execute/dir_1", {"_CONDOR_SLOT": "slot1_1", "PATH": "/bin"}),
    ops.Launch("/s", {}),
    ops.Reattach("HTCJob_12_0_slot1_1"), ops.Suspend("HTCJob_12_0_slot1_1"), ops.Resume("HTCJob_12_0_slot1_1"),
    ops.Signal("HTCJob_12_0_slot1_1", 15, 30.0), ops.Signal("c", 9),
    ops.Cleanup(28, 0, "slot1_1"), ops.Cleanup(0, 7), ops.CleanupStarterJob(),
    ops.Exec("/s", ("sh", "-c", "id"), True, 24, 80, "xterm-256color"), ops.Exec("/s", ("id",)),
]


def test_every_op_has_a_sample_and_a_handler_name():
    assert {type(r).op for r in SAMPLES} == set(ops.REQUESTS)
    assert all(cls.op == op for op, cls in ops.REQUESTS.items())


@pytest.mark.parametrize("request_", SAMPLES, ids=repr)
def test_every_op_round_trips(request_):
    message = request_.to_message()
    assert message["op"] == request_.op
    assert type(request_).from_message(message) == request_
    assert ops.REQUESTS[message["op"]].from_message(message) == request_


@pytest.mark.parametrize("request_", SAMPLES, ids=repr)
def test_unknown_fields_are_ignored(request_):
    message = request_.to_message() | {"future_field": [1, {"x": None}], "zz": "y", "": 3}
    assert type(request_).from_message(message) == request_


def test_the_wire_format_is_what_clients_always_sent():
    assert ops.Cleanup(28, 0, "slot1_1").to_message() == {"op": "cleanup", "cluster": 28, "proc": 0,
                                                         "slot": "slot1_1"}
    assert ops.CleanupStarterJob().to_message() == {"op": "cleanup_starter_job"}   # no field: the kernel says
    assert ops.CleanupStarterJob.from_message({"op": "cleanup_starter_job", "cluster": 1}) == ops.CleanupStarterJob()
    assert ops.Signal("c", 15, None).to_message() == {"op": "signal", "container": "c", "signal": 15, "grace": None}
    assert ops.Suspend("c").to_message() == {"op": "suspend", "container": "c"}
    assert ops.Reattach("c").to_message() == {"op": "reattach", "container": "c"}
    assert ops.Launch("/s", {"A": "1"}).to_message() == {"op": "launch", "scratch_dir": "/s", "starter_env": {"A": "1"}}
    assert ops.Prepare("/s", "A = 1", True).to_message() == {"op": "prepare", "job_ad": "A = 1", "scratch_dir": "/s",
                                                            "progress": True}
    assert ops.Exec("/s", ("id",)).to_message() == {"op": "exec", "scratch_dir": "/s", "argv": ["id"], "tty": False}
    assert ops.Exec("/s", ("sh",), True, 24, 80, "xterm").to_message() == {
        "op": "exec", "scratch_dir": "/s", "argv": ["sh"], "tty": True, "rows": 24, "cols": 80, "term": "xterm"}
    assert ops.Ping().to_message() == {"op": "ping"}
    assert ops.Resize(24, 80).to_message() == {"resize": [24, 80]}
    assert ops.Started("c").to_message() == {"event": "started", "container": "c"}


@pytest.mark.parametrize("cls, message, expected", [
    # what the agent always accepted (int()/float() of a number or numeric text, nulls, falsy slots)
    (ops.Signal, {"container": "c", "signal": "9", "grace": "5"}, ops.Signal("c", 9, 5.0)),
    (ops.Signal, {"container": "c", "signal": 15.0, "grace": 1e9}, ops.Signal("c", 15, ops.MAX_GRACE)),
    (ops.Signal, {"container": "c", "signal": 2, "grace": -4}, ops.Signal("c", 2, 0.0)),
    (ops.Signal, {"container": "c", "signal": 2, "grace": "inf"}, ops.Signal("c", 2, ops.MAX_GRACE)),
    (ops.Cleanup, {"cluster": 28.0, "proc": "0", "slot": ""}, ops.Cleanup(28, 0, None)),
    (ops.Cleanup, {"cluster": 1, "proc": 0, "slot": None}, ops.Cleanup(1, 0, None)),
    (ops.Cleanup, {"cluster": 1, "proc": 0, "slot": 3}, ops.Cleanup(1, 0, "3")),
    (ops.Launch, {"scratch_dir": "/s", "starter_env": None}, ops.Launch("/s", {})),
    (ops.Launch, {"scratch_dir": "/s"}, ops.Launch("/s", {})),
    (ops.Prepare, {"scratch_dir": "/s", "job_ad": None}, ops.Prepare("/s", None, False)),
    (ops.Prepare, {"scratch_dir": "/s", "job_ad": "A = 1", "progress": 1}, ops.Prepare("/s", "A = 1", True)),
    (ops.Exec, {"scratch_dir": "/s", "argv": ["id"], "term": "xterm"}, ops.Exec("/s", ("id",))),  # no tty: no TERM
    (ops.Exec, {"scratch_dir": "/s", "argv": ["id"], "rows": "x", "cols": []}, ops.Exec("/s", ("id",))),
    (ops.Exec, {"scratch_dir": "/s", "argv": ["id"], "tty": True, "rows": None, "cols": "x"},
     ops.Exec("/s", ("id",), True)),
])
def test_what_old_clients_sent_is_still_accepted(cls, message, expected):
    assert cls.from_message(message) == expected


GOOD = {
    ops.Prepare: {"scratch_dir": "/s", "job_ad": "A = 1", "progress": True},
    ops.Launch: {"scratch_dir": "/s", "starter_env": {"A": "1"}},
    ops.Reattach: {"container": "c"}, ops.Suspend: {"container": "c"}, ops.Resume: {"container": "c"},
    ops.Signal: {"container": "c", "signal": 15, "grace": 3},
    ops.Cleanup: {"cluster": 1, "proc": 0, "slot": "slot1"},
    ops.Exec: {"scratch_dir": "/s", "argv": ["id"], "tty": True, "rows": 24, "cols": 80, "term": "xterm"},
}
REFUSED = [
    (ops.Prepare, "scratch_dir", [None, 1, ["/s"], {"a": 1}, "", "/s\0x", "/" * (ops.MAX_PATH + 1)], ("missing",)),
    (ops.Prepare, "job_ad", [1, ["x"], {"a": 1}, True, "x" * (ops.MAX_TEXT + 1)], ("missing",)),
    (ops.Prepare, "progress", [[1], {"a": 1}], ()),
    (ops.Launch, "scratch_dir", [None, 3, [], "a\0"], ("missing",)),
    (ops.Launch, "starter_env", [[1, 2], "A=1", 5, {"A": 1}, {"A": None},
                                 {f"K{i}": "" for i in range(ops.MAX_ENV_ENTRIES + 1)}], ()),
    (ops.Reattach, "container", [None, "", 5, ["c"], "c" * (ops.MAX_NAME + 1), "a\0b"], ("missing",)),
    (ops.Suspend, "container", [None, "", {}], ("missing",)),
    (ops.Resume, "container", [None, "", 1.5], ("missing",)),
    (ops.Signal, "container", [None, "", 9, ["x"]], ("missing",)),
    (ops.Signal, "signal", [0, -1, 65, 10**6, 10**5000, None, "soon", [9], {}, "9" * 100, "nan", "inf"], ("missing",)),
    (ops.Signal, "grace", ["soon", [1], {}, "nan", "x" * 1000], ()),
    (ops.Cleanup, "cluster", [-1, 2**31, None, "x", [], 1e300], ("missing",)),
    (ops.Cleanup, "proc", [-1, 2**40, None, {}], ("missing",)),
    (ops.Cleanup, "slot", [True, ["slot1"], {"a": 1}, "s" * (ops.MAX_NAME + 1)], ()),
    (ops.Exec, "scratch_dir", [None, 1, ["/s"]], ("missing",)),
    (ops.Exec, "argv", [None, [], "id", [1], ["a\0b"], ["x"] * (ops.MAX_ARGV + 1), ["x" * (ops.MAX_ARG_BYTES + 1)]],
     ("missing",)),
    (ops.Exec, "tty", ["yes", 1, None, []], ()),
    (ops.Exec, "rows", [0, -1, 10000, "24", [24], 2.5], ()),
    (ops.Exec, "cols", [0, 10**6, None, "80"], ()),
    (ops.Exec, "term", ["x; rm -rf /", "", 5, ["xterm"], "x" * 65, [[[[["deep"]]]]]], ()),
]


@pytest.mark.parametrize("cls, name, values, also", REFUSED, ids=lambda v: getattr(v, "op", None) or
                         (v if isinstance(v, str) else ""))
def test_each_fields_type_and_bound_is_refused_naming_it(cls, name, values, also):
    assert cls.from_message(GOOD[cls]) is not None
    for value in values:
        with pytest.raises(ops.BadRequest) as caught:
            cls.from_message(GOOD[cls] | {name: value})
        assert caught.value.field == name, (name, value, caught.value)
        assert repr(name) in str(caught.value) and len(str(caught.value)) < 400
    if "missing" in also:
        message = dict(GOOD[cls])
        del message[name]
        with pytest.raises(ops.BadRequest, match=f"the field '{name}' is missing"):
            cls.from_message(message)


def test_the_first_missing_field_is_the_one_named():
    with pytest.raises(ops.BadRequest, match="the field 'container' is missing"):
        ops.Signal.from_message({"op": "signal"})


def test_resize_lines():
    assert ops.Resize.from_message({"resize": [24, 80]}) == ops.Resize(24, 80)
    for bad in ({}, {"resize": [24]}, {"resize": "24x80"}, {"resize": [0, 80]}, {"resize": [24, "80"]}):
        with pytest.raises(ops.BadRequest):
            ops.Resize.from_message(bad)


def test_records_are_frozen_and_compare_by_value():
    request = ops.Signal("c", 9)
    with pytest.raises(AttributeError):
        request.container = "other"  # type: ignore[misc]
    assert request == ops.Signal(container="c", signal=9, grace=None) and request != ops.Signal("c", 15)
    assert hash(request) == hash(ops.Signal("c", 9, None))
    with pytest.raises(TypeError):
        ops.Signal("c")   # a field without a default is required


def test_replies_keep_their_wire_shape():
    assert ops.PingReply("1.0", True, None).to_message() == {"ok": True, "version": "1.0", "healthy": True,
                                                             "reason": None}
    assert ops.CleanupReply(["a"]).to_message() == {"ok": True, "removed": ["a"]}
    assert ops.ExecReply(3).to_message() == {"ok": True, "exit_code": 3}
    assert ops.failure_reply({"code": 16, "reason": "no"}) == {"ok": False, "failure": {"code": 16, "reason": "no"}}
    assert ops.failure_reply({"code": 16, "reason": "no"}, error=ops.NO_STARTER) == {
        "ok": False, "failure": {"code": 16, "reason": "no"}, "error": "no_starter"}


@pytest.mark.parametrize("reply, error", [
    ({"ok": False, "failure": {"code": 16, "reason": "x"}, "error": "no_starter"}, ops.NO_STARTER),
    ({"ok": False, "failure": {"code": 16, "reason": "x"}, "error": "unknown_op"}, ops.UNKNOWN_OP),
    # what every agent before named errors answered an op it did not know
    ({"ok": False, "failure": {"code": 16, "reason": "unknown op 'cleanup_starter_job'"}}, ops.UNKNOWN_OP),
    ({"ok": False, "failure": {"code": 16, "reason": "unknown op 'other'"}}, None),
    ({"ok": False, "failure": {"code": 16, "reason": "not yours"}}, None),
    ({"ok": False, "failure": "unknown op 'cleanup_starter_job'"}, None),
    ({"ok": False, "failure": {"code": 16, "reason": "x"}, "error": ["no_starter"]}, None),
    ({"ok": False, "failure": {"code": 16, "reason": "x"}, "error": "a_future_error"}, None),
    ({"ok": True, "removed": [], "error": "no_starter"}, None),
])
def test_a_refusal_is_named_or_read_as_an_old_agents_unknown_op(reply, error):
    assert ops.error_of(reply, ops.CleanupStarterJob.op) == error


# -- fuzz: whatever JSON a peer sends, from_message answers with a request or BadRequest -------------
_SCALARS = st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30) | \
    st.sampled_from(["", "9", "-1", "1e3", "nan", "inf", "/s", "xterm", "\0", "0x10", " 7 "])
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_FIELDS = sorted({name for cls in ops.REQUESTS.values() for name in cls._fields} | {"op", "resize"})
_MESSAGES = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=10), _JSON, max_size=8)


@settings(max_examples=400, deadline=None)
@given(op=st.sampled_from(sorted(ops.REQUESTS)), message=_MESSAGES)
def test_fuzz_from_message_only_ever_raises_bad_request(op, message):
    cls = ops.REQUESTS[op]
    try:
        request = cls.from_message(message)
    except ops.BadRequest as err:
        assert err.field and str(err)
        return
    assert isinstance(request, cls)
    again = request.to_message()          # a clean result is a well-formed request again
    assert cls.from_message(again) == request
    for value in request._values():
        assert not (isinstance(value, float) and math.isnan(value))


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(sorted(ops.REQUESTS)), base=st.data())
def test_fuzz_good_messages_with_one_field_replaced(op, base):
    cls = ops.REQUESTS[op]
    message = dict(GOOD.get(cls, {}))
    if cls._fields:
        message[base.draw(st.sampled_from(cls._fields))] = base.draw(_JSON)
    try:
        assert isinstance(cls.from_message(message), cls)
    except ops.BadRequest:
        pass


@settings(max_examples=200, deadline=None)
@given(message=_MESSAGES)
def test_fuzz_resize(message):
    try:
        ops.Resize.from_message(message)
    except ops.BadRequest:
        pass


# -- the socket resolver -----------------------------------------------------------------------------
def test_socket_is_the_explicit_one_else_the_environment_else_the_knob_default(monkeypatch):
    from condor_docker.core.settings import KNOBS
    knob_default = next(k.default for k in KNOBS if k.name == "CONDOR_DOCKER_AGENT_SOCKET")
    monkeypatch.delenv("CONDOR_DOCKER_AGENT_SOCKET", raising=False)
    assert socketpath.agent_socket(None) == socketpath.DEFAULT_SOCKET == knob_default
    assert socketpath.agent_socket("") == knob_default
    monkeypatch.setenv("CONDOR_DOCKER_AGENT_SOCKET", "/env/agent.sock")
    assert socketpath.agent_socket(None) == "/env/agent.sock"
    assert socketpath.agent_socket("/given.sock") == "/given.sock"
    from condor_docker.wire.protocol import AgentClient
    assert AgentClient().path == "/env/agent.sock" and AgentClient("/x.sock").path == "/x.sock"


def test_the_default_socket_is_spelled_only_in_the_knob_table():
    package = REPO / "condor_docker"
    spelled = [str(p.relative_to(package)) for p in package.rglob("*.py") if "/agent.sock" in p.read_text()]
    assert spelled == ["core/settings.py"]


def test_hooks_import_the_wire_without_settings_or_dataclasses():
    code = ("import sys, condor_docker.wire.protocol, condor_docker.wire.ops, condor_docker.wire.socketpath; "
            "print(sorted({'dataclasses', 'inspect', 'condor_docker.core.settings', 'signal'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# -- the agent's op table -----------------------------------------------------------------------------
@pytest.fixture
def agent():
    from condor_docker.agent.service import Agent
    from condor_docker.core.settings import default_settings

    class Unused:
        pass
    return Agent(default_settings(), engine=Unused(), health=Unused(), cache=Unused(), reaper=Unused())


def _answer(agent, message):
    from condor_docker.agent.context import RequestContext
    ctx = RequestContext(str(message.get("op", ""))[:64], 1, 1000, 1000, None, [])   # type: ignore[arg-type]
    return agent._answer(ctx, message)


@pytest.mark.parametrize("message, reason", [
    ({"op": "signal"}, "malformed signal request: the field 'container' is missing"),
    ({"op": "signal", "container": "c", "signal": 99}, "the field 'signal' must be between 1 and"),
    ({"op": "cleanup", "cluster": "x", "proc": 0}, "malformed cleanup request: the field 'cluster'"),
    ({"op": "launch", "scratch_dir": "/s", "starter_env": [1, 2]}, "the field 'starter_env' must be a mapping"),
    ({"op": "exec", "scratch_dir": "/s", "argv": "id"}, "the field 'argv'"),
    ({"op": "nope"}, "unknown op 'nope'"),
    ({}, "unknown op ''"),
])
def test_the_agent_refuses_a_malformed_request_naming_the_field(agent, message, reason):
    reply = _answer(agent, message)
    assert reply["ok"] is False and reply["failure"]["code"] == 16 and reason in reply["failure"]["reason"], reply


def test_an_unknown_op_is_refused_by_name_and_in_the_words_old_clients_read(agent):
    reply = _answer(agent, {"op": "nope"})
    assert reply == {"ok": False, "failure": {"code": 16, "reason": "unknown op 'nope'"}, "error": "unknown_op"}
    assert ops.error_of(reply, "nope") == ops.UNKNOWN_OP


def test_handlers_receive_the_typed_request(agent):
    seen = []
    for op in ops.REQUESTS:
        agent._ops[op] = lambda ctx, request: seen.append(request) or {"ok": True}
    for sample in SAMPLES:
        assert _answer(agent, sample.to_message() | {"extra": 1}) == {"ok": True}
    assert seen == SAMPLES
