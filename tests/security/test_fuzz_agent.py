"""A bounded fuzzing pass against a LIVE agent as cdtest1 (trust boundary round 2).

Inputs: every op's valid request (wire/ops.py `to_message()`), mutated in
types, sizes, nesting, unicode, NULs, huge numbers, missing and extra fields,
then framed badly (cut, no newline, many lines, invalid UTF-8, fds attached or
not, sent in pieces); and random `.job.ad` / `.machine.ad` files for prepare
and launch.  Every input goes through rawpeer.py, run as cdtest1.

Invariants, per input: a clean reply or a clean close within the request
timeout (never a hang), the agent alive with the same pid.  At the end: no fd
leaked by the agent, no container left, no "failed unexpectedly" in its log.

The corpus (tests/security/corpus/*.json, one case each) is replayed first,
every run.  A failing input found here is written to the corpus directory as
`found-<hash>.json` (review it, keep it: it is replayed from then on).
Hypothesis runs derandomized (fixed seed) with no example database, so CI
sees the same inputs every run; the whole file stays well under 60 s.
"""
from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secpeer import RawPeer, agent_fd_kinds, case, fds_settled

from condor_docker.wire import ops

pytestmark = [pytest.mark.root, pytest.mark.engine]

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
REQUEST_TIMEOUT = 1.0          # the agent's CONDOR_DOCKER_REQUEST_TIMEOUT here: a cut request costs this much
ANSWER_WITHIN = REQUEST_TIMEOUT + 8.0   # a reply or a close must come by then (slack for a shared machine)
WIRE_EXAMPLES = 150
AD_EXAMPLES = 20
FUZZ = settings(max_examples=WIRE_EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


# -- the agent and the peer, shared by the whole file ------------------------------------
@pytest.fixture
def target(agent_factory, make_scratch, real_job_ad, run_as):
    """(agent, peer, scratch dirs): one agent for every example, so its pid and fds can be compared."""
    agent = agent_factory(CONDOR_DOCKER_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT))
    # wire fuzzing: a scratch dir whose job is refused at once (an image name no registry serves)
    held = make_scratch("cdtest1", real_job_ad(DockerImage="Not A Valid/Image", Arguments="-c 'exit 0'"))
    ads = make_scratch("cdtest1", real_job_ad(Arguments="-c 'exit 0'"))   # ad fuzzing rewrites its ads
    peer = RawPeer(run_as, "cdtest1", agent)
    agent.call("ping")
    state = {"agent": agent, "peer": peer, "held": held, "ads": ads, "pid": agent.process.pid,
             "fds": agent_fd_kinds(agent), "answers": {}}
    yield state
    peer.close()


def _save_found(one: dict, why: str) -> str:
    digest = hashlib.sha256(json.dumps(one, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(CORPUS, f"found-{digest}.json")
    with open(path, "w") as stream:
        json.dump({"name": f"found-{digest}", "why": why[:500], "case": one}, stream, indent=1)
    return path


def _check(state: dict, one: dict, name: str = "", wait: float = ANSWER_WITHIN) -> dict:
    """Send one case; assert the invariants that hold for every input."""
    one = dict(one, wait=wait)
    answer = state["peer"].send(one)
    agent = state["agent"]
    problem = None
    if answer["outcome"] not in ("reply", "closed"):
        problem = f"no reply and no close within {ANSWER_WITHIN} s: {answer}"
    elif agent.process.poll() is not None or agent.process.pid != state["pid"]:
        problem = f"the agent died (rc {agent.process.returncode}): {agent.log_tail()}"
    elif answer["garbage"]:
        problem = f"a reply that is not a JSON line: {answer['garbage']!r}"
    elif answer["replies"] and "ok" not in answer["replies"][-1]:
        problem = f"the last line is no final reply: {answer['replies'][-1]}"
    if problem:
        where = _save_found(one, problem) if not name else name
        raise AssertionError(f"{problem}\n(case: {where})")
    key = answer["outcome"] + ":" + str((answer["replies"][-1].get("failure") or {}).get("code", "ok")
                                        if answer["replies"] else "-")
    state["answers"][key] = state["answers"].get(key, 0) + 1
    state["peer_seconds"] = state.get("peer_seconds", 0.0) + answer["seconds"]
    return answer


def _final_checks(state: dict, managed_containers, wait_until) -> None:
    agent = state["agent"]
    assert agent.call("ping")["ok"] and agent.process.pid == state["pid"]
    wait_until(lambda: fds_settled(agent, state["fds"]), 30,
               f"the agent's fds come back near {state['fds']} (now {agent_fd_kinds(agent)})")
    wait_until(lambda: not managed_containers(), 60, "no container of the fuzzed jobs is left")
    log = agent.log_text()
    assert "failed unexpectedly" not in log and "Traceback" not in log and "Logging error" not in log, \
        agent.log_tail(60)
    print(f"answers: {json.dumps(state['answers'], sort_keys=True)}; "
          f"{state.get('peer_seconds', 0):.1f} s waiting for the agent")


# -- the corpus, replayed first ----------------------------------------------------------
def _corpus() -> list[dict]:
    entries = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "*.json"))):
        with open(path) as stream:
            entries.append(json.load(stream))
    return entries


def _expand(one: dict, state: dict) -> dict:
    """A corpus case as rawpeer.py takes it; its chunks may name the scratch dirs as {held} / {ads}."""
    chunks = []
    for chunk in one.get("chunks", []):
        if isinstance(chunk, list):   # a long chunk as runs: [[base64 piece, times], ...]
            data = b"".join(base64.b64decode(piece) * times for piece, times in chunk)
        else:
            data = base64.b64decode(chunk)
        for name in ("held", "ads"):
            data = data.replace(b"{%s}" % name.encode(), state[name].encode())
        chunks.append(base64.b64encode(data).decode())
    return dict(one, chunks=chunks)


def test_the_corpus_replays_cleanly(target, managed_containers, wait_until):
    entries = _corpus()
    assert len(entries) >= 20, "the corpus is in tests/security/corpus/"
    for entry in entries:
        answer = _check(target, _expand(entry["case"], target), name=entry["name"])
        expect = entry.get("expect", "any")
        if expect == "refused":
            assert answer["replies"] and answer["replies"][-1].get("ok") is False, (entry["name"], answer)
            if "codes" in entry:
                assert answer["replies"][-1]["failure"]["code"] in entry["codes"], (entry["name"], answer)
        elif expect in ("reply", "closed"):
            assert answer["outcome"] == expect, (entry["name"], answer)
        for word in entry.get("reason_has", []):
            assert word in json.dumps(answer["replies"]), (entry["name"], word, answer)
    _final_checks(target, managed_containers, wait_until)


# -- requests: valid messages, mutated -----------------------------------------------------
def _valid_messages(held: str) -> dict[str, dict]:
    """One valid request per op, built the way clients build them."""
    built = {
        "ping": ops.Ping(), "machine_attrs": ops.MachineAttrs(), "status": ops.Status(),
        "admin_status": ops.AdminStatus(), "prepare": ops.Prepare(held, None, progress=True),
        "launch": ops.Launch(held, {"_CONDOR_SCRATCH_DIR": held, "_CONDOR_SLOT": "slot1_1"}),
        "reattach": ops.Reattach("HTCJob_1_0_slot1_1"), "signal": ops.Signal("HTCJob_1_0_slot1_1", 15, 2.0),
        "suspend": ops.Suspend("HTCJob_1_0_slot1_1"), "resume": ops.Resume("HTCJob_1_0_slot1_1"),
        "cleanup": ops.Cleanup(1, 0, "slot1_1"), "exec": ops.Exec(held, ("/bin/true",), True, 24, 80, "xterm"),
        "cleanup_starter_job": ops.CleanupStarterJob(),
    }
    assert set(built) == set(ops.REQUESTS), "a new op needs a valid example here"
    return {op: request.to_message() for op, request in built.items()}


texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", "\0", "a\0b", "\n", "\ud800", "\udfff", "\u2028", "\ufeff", "../../etc", "/proc/1/root",
                     "/", "HTCJob_1_0_slot1_1\n", "é" * 3, "x" * 5000, "slot1_1", "ping"]),
)
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 1 << 31, 1 << 63, 10 ** 300, 1e308]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(texts, inner, max_size=4)), max_leaves=12)


@st.composite
def mutated_message(draw, base: dict[str, dict]):
    op = draw(st.sampled_from(sorted(base)))
    message = dict(base[op])
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["set", "delete", "extra", "op", "deep", "huge", "env"]))
        fields = sorted(message)
        if kind == "set" and fields:
            message[draw(st.sampled_from(fields))] = draw(values)
        elif kind == "delete" and fields:
            message.pop(draw(st.sampled_from(fields)), None)
        elif kind == "extra":
            message[draw(texts)] = draw(values)
        elif kind == "op":
            message["op"] = draw(st.one_of(values, st.sampled_from(sorted(base))))
        elif kind == "deep" and fields:
            depth = draw(st.sampled_from([10, 500, 990, 1100, 5000, 50000]))
            message[draw(st.sampled_from(fields))] = {"__deep__": depth}
        elif kind == "huge" and fields:
            message[draw(st.sampled_from(fields))] = {"__huge__": draw(st.sampled_from([4096, 1 << 16, (1 << 20) + 16]))}
        elif kind == "env":
            message["starter_env"] = draw(st.dictionaries(texts, st.one_of(texts, values), max_size=6))
    return message


def _encode(value, ensure_ascii: bool) -> bytes:
    """JSON text with the __deep__ / __huge__ placeholders expanded (built as text: json.dumps would recurse)."""
    if isinstance(value, dict) and set(value) == {"__deep__"}:
        return b"[" * value["__deep__"] + b"]" * value["__deep__"]
    if isinstance(value, dict) and set(value) == {"__huge__"}:
        return b'"' + b"a" * value["__huge__"] + b'"'
    if isinstance(value, dict):
        return b"{" + b",".join(json.dumps(k, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass") + b":" +
                                _encode(v, ensure_ascii) for k, v in value.items()) + b"}"
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@st.composite
def framed(draw, message: dict):
    """The message's bytes, framed well or badly, with or without fds."""
    data = _encode(message, draw(st.booleans())) + b"\n"
    frame = draw(st.sampled_from(["line", "line", "line", "cut", "no-newline", "many-lines", "garbage", "utf8",
                                  "pieces", "two-messages"]))
    shutdown = draw(st.sampled_from([True, True, False]))
    pause = 0.0
    if frame == "cut":
        data = data[:draw(st.integers(0, max(0, len(data) - 2)))]
    elif frame == "no-newline":
        data = data[:-1]
    elif frame == "many-lines":
        data = data * (draw(st.integers(2, 200)) if len(data) < 4096 else 2)
    elif frame == "garbage":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    elif frame == "utf8":
        at = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00"])) + data[at:]
    elif frame == "two-messages":
        data = data + b'{"op": "ping"}\n'
    chunks = [data]
    if frame == "pieces" and len(data) > 1:
        cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=4))))
        chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        pause = 0.05
    fds = draw(st.sampled_from([0, 0, 3, 3, 1, 4]))
    return case(*chunks, fds=fds, shutdown=shutdown, pause=pause)


def test_fuzz_requests_for_every_op(target, managed_containers, wait_until):
    base = _valid_messages(target["held"])
    started = time.monotonic()

    @FUZZ
    @given(data=st.data())
    def one(data):
        message = data.draw(mutated_message(base), label="message")
        _check(target, data.draw(framed(message), label="framing"))

    one()
    _final_checks(target, managed_containers, wait_until)
    print(f"{WIRE_EXAMPLES} request examples in {time.monotonic() - started:.1f} s")


# -- ad files: random .job.ad / .machine.ad for prepare and launch ---------------------------
ATOMS = st.sampled_from(["1", "0", "-1", "1.5e308", "true", "false", "undefined", "error", '"busybox"', '""',
                         '"a\\"b"', '"\\\\"', "'quoted name'", "MY.x", "TARGET.Memory", "Cpus", "RequestMemory",
                         "strcat(\"a\", \"b\")", "ifThenElse(true, 1, 2)", "{1, 2}", "[a = 1; b = a]", "9" * 400,
                         '"' + "é" * 100 + '"', '"\x01\x7f"', "a.b.c", "x[0]"])
OPERATORS = st.sampled_from(["+", "-", "*", "/", "%", "&&", "||", "==", "=?=", "=!=", "<", ">=", "?", ":", ".", "[", "]",
                             "(", ")", "{", "}", ",", ";", "!", "~", "<<", ">>>", "\"", "\\", " "])


@st.composite
def ad_value(draw):
    parts = draw(st.lists(st.one_of(ATOMS, OPERATORS), min_size=1, max_size=30))
    text = " ".join(parts)
    repeat = draw(st.sampled_from([1, 1, 1, 50, 3000, 60000]))   # some values far past the bounds
    return text * repeat if len(text) * repeat < 3 << 20 else text


AD_ATTRS = ["DockerImage", "Arguments", "Cmd", "Environment", "RequestMemory", "RequestCpus", "RequestDisk",
            "ClusterId", "ProcId", "Cpus", "Memory", "Disk", "GPUs", "WantDocker", "DockerNetworkType", "Bomb",
            "JobUniverse", "Owner", "docker_image", "x.y"]


@st.composite
def ad_text(draw, base: str):
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "append", "delete", "raw", "truncate"]))
        if kind == "replace" or kind == "append":
            line = f"{draw(st.sampled_from(AD_ATTRS))} = {draw(ad_value())}"
            if kind == "replace" and lines:
                lines[draw(st.integers(0, len(lines) - 1))] = line
            else:
                lines.append(line)
        elif kind == "delete" and lines:
            lines.pop(draw(st.integers(0, len(lines) - 1)))
        elif kind == "raw":
            lines.append(draw(st.text(max_size=80)))
        elif kind == "truncate":
            text = "\n".join(lines)
            lines = text[:draw(st.integers(0, len(text)))].splitlines()
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\0", "\n[\n", "\n]\n"]))


def test_fuzz_ad_files_for_prepare_and_launch(target, test_users, managed_containers, wait_until):
    scratch = target["ads"]
    with open(os.path.join(scratch, ".job.ad")) as stream:
        job_base = stream.read()
    with open(os.path.join(scratch, ".machine.ad")) as stream:
        machine_base = stream.read()
    uid, gid = test_users["cdtest1"]
    started = time.monotonic()

    def write(name: str, text: str) -> None:   # the job's own files: it may write anything there
        path = os.path.join(scratch, name)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as stream:
            stream.write(text)
        os.chown(path, uid, gid)

    @settings(FUZZ, max_examples=AD_EXAMPLES)
    @given(data=st.data())
    def one(data):
        which = data.draw(st.sampled_from(["job", "machine", "both"]), label="which")
        write(".job.ad", data.draw(ad_text(job_base), label="job ad") if which != "machine" else job_base)
        write(".machine.ad", data.draw(ad_text(machine_base), label="machine ad") if which != "job" else machine_base)
        action = data.draw(st.sampled_from(["prepare", "prepare", "launch"]), label="action")
        if action == "prepare":
            message = ops.Prepare(scratch, None).to_message()
            one_case = case(json.dumps(message).encode() + b"\n", shutdown=True)
        else:
            message = ops.Launch(scratch, {"_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_SLOT": "slot1_1"}).to_message()
            one_case = case(json.dumps(message).encode() + b"\n", fds=3, shutdown=True)
        answer = _check(target, one_case, wait=60)   # a valid ad runs its container (`exit 0`)
        assert answer["outcome"] == "reply", answer   # an ad, however bad, is answered (hold or ok)

    one()
    _final_checks(target, managed_containers, wait_until)
    print(f"{AD_EXAMPLES} ad examples in {time.monotonic() - started:.1f} s")
