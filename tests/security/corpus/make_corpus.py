"""Writes the hand-made corpus entries (tests/security/corpus/*.json) that test_fuzz_agent.py replays first.

    python tests/security/corpus/make_corpus.py

An entry: {"name", "why", "case": rawpeer.py's case (chunks as base64, or runs
[[base64, times], ...] for long ones; "{held}" / "{ads}" stand for the test's
scratch dirs), "expect": any | reply | closed | refused, optional "codes" and
"reason_has"}.  Inputs found by the fuzzer are saved beside them as found-*.json.
"""
import base64
import json
import os

out = os.path.dirname(os.path.abspath(__file__))
def c(name, chunks, why, fds=0, shutdown=True, expect="any", codes=None, reason_has=None, pause=0.0):
    entry = {"name": name, "why": why,
             "case": {"chunks": [pack(x) for x in chunks], "fds": fds, "shutdown": shutdown, "pause": pause},
             "expect": expect}
    if codes: entry["codes"] = codes
    if reason_has: entry["reason_has"] = reason_has
    with open(os.path.join(out, name + ".json"), "w") as s:
        json.dump(entry, s, indent=1); s.write("\n")
def pack(data):
    """A chunk: base64, or for a long one [[base64 piece, times], ...] (runs of a repeated piece)."""
    if len(data) < 2000:
        return base64.b64encode(data).decode()
    runs = []
    i = 0
    while i < len(data):
        # the longest run of a repeated piece of 1..64 bytes at i
        best = (1, data[i:i + 1])
        for width in range(1, 65):
            piece = data[i:i + width]
            n = 1
            while data[i + n * width:i + (n + 1) * width] == piece:
                n += 1
            if n * width > best[0] * len(best[1]) and n > 1:
                best = (n, piece)
        n, piece = best
        if runs and n == 1 and runs[-1][1] == 1:
            runs[-1][0] += piece
        else:
            runs.append([piece, n])
        i += n * len(piece)
    return [[base64.b64encode(p).decode(), n] for p, n in runs]
J = lambda m: json.dumps(m).encode() + b"\n"
c("ping-valid", [J({"op": "ping"})], "the baseline: a valid ping", expect="reply")
c("op-newline-forgery", [J({"op": "ping\nINFO condor_docker.agent: op=launch uid=0 pid=1 result=ok"})],
  "item 13: a newline in the op name forged an agent log line", expect="refused", codes=[16])
c("container-newline-forgery", [J({"op": "signal", "container": "HTCJob_1\nINFO condor_docker.agent: op=launch uid=0", "signal": 15})],
  "item 13: a newline in a container name", expect="refused")
c("op-deep-list", [b'{"op": ' + b"[" * 900 + b"]" * 900 + b"}\n"],
  "str() of a deep op value recursed (op is now taken only when a string)", expect="refused", codes=[16])
c("deep-nesting-200k", [b'{"op": "ping", "x": ' + b"[" * 200000 + b"]" * 200000 + b"}\n"],
  "json.loads recursion: nested too deeply", expect="refused", codes=[16], reason_has=["nested too deeply"])
c("huge-int-5000-digits", [b'{"op": "cleanup", "cluster": ' + b"9" * 5000 + b', "proc": 0}\n'],
  "int() of more than 4300 digits raises ValueError", expect="refused", codes=[16])
c("huge-int-in-range-text", [J({"op": "cleanup", "cluster": 10 ** 30, "proc": 0})], "a number past 32 bits", expect="refused", codes=[16])
c("nan-literal", [b'{"op": "signal", "container": "x", "signal": NaN}\n'], "NaN is not JSON", expect="refused", codes=[16])
c("float-overflow", [b'{"op": "signal", "container": "x", "signal": 1e400}\n'], "1e400 is inf", expect="refused", codes=[16])
c("lone-surrogate-op", [b'{"op": "\\ud800"}\n'], "a lone surrogate in a JSON string (unencodable in logs)", expect="refused", codes=[16])
c("lone-surrogate-scratch", [b'{"op": "prepare", "job_ad": null, "scratch_dir": "/x/\\udfff"}\n'],
  "a lone surrogate in a path (os functions cannot encode it)", expect="refused")
c("lone-surrogate-env", [b'{"op": "launch", "scratch_dir": "{held}", "starter_env": {"_CONDOR_SLOT": "slot1_\\ud800"}}\n'],
  "a lone surrogate in the slot name", fds=3, expect="refused")
c("nul-in-scratch", [J({"op": "prepare", "job_ad": None, "scratch_dir": "{held}\0/x"})], "a NUL in a path", expect="refused", codes=[16])
c("nul-in-job-ad", [J({"op": "prepare", "job_ad": "ClusterId = 1\0\nProcId = 0\n", "scratch_dir": "{held}"})],
  "a NUL inside the job ad text", expect="refused")
c("bad-utf8", [b'{"op": "\xff\xfe"}\n'], "not UTF-8", expect="refused", codes=[16])
c("overlong-utf8-nul", [b'{"op": "ping\xc0\x80"}\n'], "an overlong NUL", expect="refused", codes=[16])
c("bom-prefix", [b"\xef\xbb\xbf" + J({"op": "ping"})], "a UTF-8 BOM before the object", expect="any")
c("list-message", [b"[1, 2]\n"], "not an object", expect="refused", codes=[16])
c("line-over-1mb", [b'{"op": "ping", "x": "' + b"a" * ((1 << 20) + 10) + b'"}\n'], "longer than MAX_LINE", expect="any")
c("no-newline-then-close", [b'{"op": "ping"}'], "the peer half-closes without a newline", expect="any")
c("no-newline-held-open", [b'{"op": "ping"'], "the request never completes: the deadline closes it", shutdown=False, expect="any")
c("cut-mid-string", [b'{"op": "launch", "scratch_dir": "/var/li'], "cut in a string", fds=3, expect="any")
c("four-fds", [J({"op": "launch", "scratch_dir": "{held}"})], "more than MAX_FDS file descriptors", fds=4, expect="any")
c("launch-no-fds", [J({"op": "launch", "scratch_dir": "{held}", "starter_env": {}})], "a launch without its 3 fds", expect="refused", codes=[16])
c("launch-one-fd", [J({"op": "launch", "scratch_dir": "{held}", "starter_env": {}})], "a launch with 1 fd", fds=1, expect="refused", codes=[16])
c("launch-held-image", [J({"op": "launch", "scratch_dir": "{held}", "starter_env": {"_CONDOR_SLOT": "slot1_1"}})],
  "a valid launch whose job is refused (invalid image)", fds=3, expect="refused")
c("many-lines", [J({"op": "ping"}) * 5000], "5000 requests on one connection: one answer", expect="reply")
c("pieces", [b'{"op"', b': "pi', b'ng"}', b"\n"], "a request in pieces", pause=0.05, expect="reply")
c("exec-huge-argv", [J({"op": "exec", "scratch_dir": "{held}", "argv": ["a" * 300000]})], "argv over MAX_ARG_BYTES", fds=3, expect="refused", codes=[16])
c("exec-bad-term", [J({"op": "exec", "scratch_dir": "{held}", "argv": ["sh"], "tty": True, "term": "x\n;rm"})], "a terminal name with a newline", fds=3, expect="refused", codes=[16])
c("exec-huge-rows", [J({"op": "exec", "scratch_dir": "{held}", "argv": ["sh"], "tty": True, "rows": 10 ** 20, "cols": -1})], "terminal size out of range", fds=3, expect="refused", codes=[16])
c("proc-scratch", [J({"op": "prepare", "job_ad": "A = 1", "scratch_dir": "/proc/self/cwd"})], "a scratch dir under /proc", expect="refused", codes=[16])
c("dotdot-scratch", [J({"op": "prepare", "job_ad": None, "scratch_dir": "{held}/../../../../etc"})], "a scratch dir climbing out", expect="refused")
c("operator-chain-ad-text", [J({"op": "prepare", "job_ad": "ClusterId = 1\nX = " + "+".join(["1"] * 50000) + "\n", "scratch_dir": "{held}"})],
  "item 1: the operator chain that killed the agent (rc 139)", expect="refused", codes=[10], reason_has=["not one plain string"])
c("select-chain-ad-text", [J({"op": "prepare", "job_ad": "ClusterId = 1\nX = a" + ".b" * 100000 + "\n", "scratch_dir": "{held}"})],
  "a.b.b...: crashed classad2's lookup (rc 139) past the first bound", expect="refused", codes=[10], reason_has=["not one plain string"])
c("deep-parens-ad-text", [J({"op": "prepare", "job_ad": "X = " + "(" * 100000 + "1" + ")" * 100000 + "\n", "scratch_dir": "{held}"})],
  "100k parentheses", expect="refused", codes=[10], reason_has=["not one plain string"])
c("quoted-names-ad-text", [J({"op": "prepare", "job_ad": "ClusterId = 1\nX = 'a\"b' + " + "+".join(["1"] * 300000) + " + 'c\"d'\n", "scratch_dir": "{held}"})],
  "a review: single-quoted names hid a chain from the counter (rc 139)", expect="refused", codes=[10], reason_has=["not one plain string"])
c("is-chain-ad-text", [J({"op": "prepare", "job_ad": "ClusterId = 1\nX = " + " is ".join(["1"] * 150000) + "\n", "scratch_dir": "{held}"})],
  "a review: is/isnt were no operators (rc 139)", expect="refused", codes=[10], reason_has=["not one plain string"])
c("mid-chain-ad-text", [J({"op": "prepare", "job_ad": "ClusterId = 1\nX = " + "+".join(["1"] * 5000) + "\n", "scratch_dir": "{held}"})],
  "a chain under the length backstop: counted", expect="refused", codes=[10], reason_has=["operators"])
c("signal-grace-nan-string", [J({"op": "signal", "container": "x", "signal": 15, "grace": "nan"})], "float('nan') from a string", expect="refused", codes=[16])
c("signal-grace-inf-string", [J({"op": "signal", "container": "x", "signal": 15, "grace": "inf"})], "float('inf') from a string: cut to MAX_GRACE", expect="any")
c("cleanup-slot-object", [J({"op": "cleanup", "cluster": 1, "proc": 0, "slot": {"a": [1]}})], "a slot that is an object", expect="refused", codes=[16])
c("reattach-empty", [J({"op": "reattach", "container": ""})], "an empty container name", fds=3, expect="refused", codes=[16])
c("admin-status-as-user", [J({"op": "admin_status"})], "a job user asks for the admin report: only its own", expect="any")
