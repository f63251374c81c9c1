"""A hostile job user's toolbox; the tests run this file's text as cdtest1/cdtest2 (`python -c`).

    attacker.py MODE SOCKET [ARGS...]     prints one JSON line with what happened

Modes (each is one attack from docs/TRUST-MODEL.md, done exactly as a job could):
    swap-tmp-race  SCRATCH VICTIM N     prepare/launch while swapping <scratch>/tmp, var and a
                                        nested path component for links to VICTIM
    mount-race     SCRATCH VICTIM_TMP N launch; at "started" swap <scratch>/tmp for a link to
                                        another user's /tmp; report what the container saw
    fd-flood       N                    N connections that pass 3 fds and then misbehave
    slowloris      N SECONDS            N connections sending one byte a second
    parallel       N                    N well-behaved pings at once (threads)
    malformed                           the malformed requests, one per connection
    launch-as      SCRATCH CLUSTER PROC SLOT COMMAND   one launch with a rewritten .job.ad
It uses only the stdlib and condor_docker.wire.protocol (what a job can import).
"""
import json
import os
import socket
import sys
import threading
import time

from condor_docker.wire.protocol import AgentClient, Connection

SOCK = sys.argv[2] if len(sys.argv) > 2 else ""


def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(SOCK)
    return sock


def reply_of(sock):
    try:
        message, _ = Connection(sock).receive()
        return message
    except Exception as err:
        return {"error": str(err)}
    finally:
        sock.close()


def swap(path, target, stop, counter):
    """Keep `path` flipping between the real directory and a link to `target`."""
    parked = path + ".real"
    while not stop.is_set():
        try:
            os.rename(path, parked)
            os.symlink(target, path)
            time.sleep(0)
            os.unlink(path)
            os.rename(parked, path)
            counter[0] += 1
        except OSError:
            time.sleep(0.001)


def swap_tmp_race(scratch, victim, attempts):
    """prepare (nested path), launch (nested path), launch (the scratch dir) in turn, links flipping."""
    for sub in ("tmp", "var/tmp", "nest/inner"):
        os.makedirs(os.path.join(scratch, sub), exist_ok=True)
    nested = os.path.join(scratch, "nest", "inner")
    for name in (".job.ad", ".machine.ad"):
        with open(os.path.join(scratch, name)) as src, open(os.path.join(nested, name), "w") as dst:
            dst.write(src.read())
    stop, counter = threading.Event(), [0]
    swappers = [threading.Thread(target=swap, args=(os.path.join(scratch, name), victim, stop, counter))
                for name in ("tmp", "var", "nest")]
    for thread in swappers:
        thread.start()
    with open(os.path.join(scratch, ".job.ad")) as stream:
        job_ad = stream.read()
    codes = {}
    client = AgentClient(SOCK, timeout=60)
    try:
        for attempt in range(attempts):
            kind = ("prepare-nested", "launch-nested", "launch")[attempt % 3]
            if kind == "prepare-nested":
                reply = client.call("prepare", job_ad=job_ad, scratch_dir=nested)
            else:
                target = nested if kind == "launch-nested" else scratch
                reply, _ = launch(target, "out", out_dir=scratch)
            key = kind + ":" + ("ok" if reply.get("ok") else str((reply.get("failure") or {}).get("code")))
            codes[key] = codes.get(key, 0) + 1
    finally:
        stop.set()
        for thread in swappers:
            thread.join()
    return {"codes": codes, "swaps": counter[0]}


def launch(scratch, out_name, on_started=None, env=None, out_dir=None):
    """One launch with [/dev/null, out, out] as the job's fds; (final reply, container name)."""
    out_path = os.path.join(out_dir or scratch, out_name)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    name = None
    try:
        starter_env = {"_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_SLOT": "slot1_1"}
        starter_env.update(env or {})
        for message in AgentClient(SOCK, timeout=None).stream("launch", fds=[null, out, out], scratch_dir=scratch,
                                                             starter_env=starter_env):
            if message.get("event") == "started":
                name = message.get("container")
                if on_started:
                    on_started()
            if "ok" in message:
                return message, name
    finally:
        os.close(null)
        os.close(out)
    return {"ok": False}, name


def mount_race(scratch, victim_tmp, attempts):
    """At the created/started moment, make <scratch>/tmp a link to another user's /tmp."""
    seen_victim = wrote = oks = 0
    tmp = os.path.join(scratch, "tmp")
    os.makedirs(tmp, exist_ok=True)
    for attempt in range(attempts):
        if os.path.islink(tmp):
            os.unlink(tmp)
            os.mkdir(tmp)

        def to_victim():
            try:
                os.rename(tmp, tmp + ".%d" % attempt)
                os.symlink(victim_tmp, tmp)
            except OSError:
                pass

        reply, _ = launch(scratch, "out", on_started=to_victim)
        oks += bool(reply.get("ok"))
        with open(os.path.join(scratch, "out")) as stream:
            seen = stream.read()
        seen_victim += "victim-marker" in seen
        wrote += "wrote" in seen
        for name in os.listdir(scratch):
            if name.startswith("tmp."):
                os.rmdir(os.path.join(scratch, name))
    return {"attempts": attempts, "ok": oks, "saw_victim": seen_victim, "wrote": wrote}


BAD_PAYLOADS = [b"this is not json\n", b"[1, 2, 3]\n", b'{"op": "launch", "scratch_dir": ',  # cut
                b"\xff\xfe\n", b'{"op": "ping"']                                                  # no newline


def fd_flood(count):
    sent = 0
    for index in range(count):
        payload = BAD_PAYLOADS[index % len(BAD_PAYLOADS)]
        try:
            sock = connect()
            fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(3 if index % 7 else 5)]
            try:
                socket.send_fds(sock, [payload], fds)
                sent += 1
            finally:
                for fd in fds:
                    os.close(fd)
            sock.shutdown(socket.SHUT_WR)   # the peer closes mid-message (or after garbage)
            reply_of(sock)
        except OSError:
            pass
    return {"sent": sent}


def slowloris(count, seconds):
    socks = []
    turned_away = 0
    for _ in range(count):
        try:
            sock = connect()
            sock.setblocking(False)
            socks.append(sock)
        except OSError:
            turned_away += 1
    closed_by_agent = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(closed_by_agent) < len(socks):
        for index, sock in enumerate(socks):
            if index in closed_by_agent:
                continue
            try:
                sock.send(b" ")
                data = sock.recv(4096)
                if data is not None:
                    closed_by_agent.add(index)     # an answer (refusal) or EOF: the agent let go
            except BlockingIOError:
                pass
            except OSError:
                closed_by_agent.add(index)
        time.sleep(1.0)
    for sock in socks:
        sock.close()
    return {"opened": len(socks), "turned_away_at_connect": turned_away, "closed_by_agent": len(closed_by_agent)}


def parallel(count):
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def one():
        barrier.wait()
        started = time.monotonic()
        try:
            reply = AgentClient(SOCK, timeout=60).call("ping")
            outcome = "ok" if reply.get("ok") else "refused:" + str(reply.get("failure"))
        except Exception as err:
            outcome = "error:" + str(err)
        with lock:
            results.append((outcome, time.monotonic() - started))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = {}
    for outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"outcomes": outcomes, "slowest": max(t for _, t in results)}


def malformed(scratch):
    deep = b'{"op": "ping", "x": ' + b"[" * 200000 + b"]" * 200000 + b"}\n"
    cases = {
        "huge-float": b'{"op": "signal", "container": "x", "signal": 1e400}\n',
        "nan": b'{"op": "signal", "container": "x", "signal": NaN}\n',
        "huge-int": b'{"op": "cleanup", "cluster": ' + b"9" * 5000 + b', "proc": 0}\n',
        "list-for-mapping": json.dumps({"op": "launch", "scratch_dir": scratch, "starter_env": [1, 2]}).encode() + b"\n",
        "list-message": b"[1, 2]\n",
        "deep-nesting": deep,
        "proc-scratch": json.dumps({"op": "prepare", "job_ad": "A = 1", "scratch_dir": "/proc/self/cwd"}).encode() + b"\n",
        "proc-scratch-launch": json.dumps({"op": "launch", "scratch_dir": "/proc/1/root/tmp"}).encode() + b"\n",
        "dict-scratch": json.dumps({"op": "prepare", "job_ad": "A = 1", "scratch_dir": {"a": 1}}).encode() + b"\n",
        "job-ad-list": json.dumps({"op": "prepare", "job_ad": ["x"], "scratch_dir": scratch}).encode() + b"\n",
        "unterminated-ad": json.dumps({"op": "prepare", "scratch_dir": scratch,
                                       "job_ad": 'ClusterId = 1\nDockerImage = "busybox\nWantDocker = true\n'}).encode() + b"\n",
        "missing-field": b'{"op": "signal"}\n',
        "op-list": b'{"op": ["ping"]}\n',
        "bad-utf8": b'{"op": "\xff"}\n',
        "grace-string": b'{"op": "signal", "container": "x", "signal": 9, "grace": "soon"}\n',
    }
    replies = {}
    for name, payload in cases.items():
        sock = connect()
        try:
            sock.sendall(payload)
        except OSError as err:
            replies[name] = {"error": str(err)}
            sock.close()
            continue
        replies[name] = reply_of(sock)
    return replies


def launch_as(scratch, cluster, proc, slot, command):
    """Rewrite this job's own .job.ad (a job may) to claim a job id and slot, then launch."""
    path = os.path.join(scratch, ".job.ad")
    with open(path) as stream:
        lines = [line for line in stream.read().splitlines()
                 if line.split("=", 1)[0].strip() not in ("ClusterId", "ProcId", "Arguments")]
    lines += [f"ClusterId = {cluster}", f"ProcId = {proc}", "Arguments = " + json.dumps("-c '" + command + "'")]
    with open(path + ".new", "w") as stream:
        stream.write("\n".join(lines) + "\n")
    os.rename(path + ".new", path)
    reply, name = launch(scratch, "out", env={"_CONDOR_SLOT": slot})
    return {"reply": reply, "container": name}


def main():
    mode, args = sys.argv[1], sys.argv[3:]
    if mode == "swap-tmp-race":
        result = swap_tmp_race(args[0], args[1], int(args[2]))
    elif mode == "mount-race":
        result = mount_race(args[0], args[1], int(args[2]))
    elif mode == "fd-flood":
        result = fd_flood(int(args[0]))
    elif mode == "slowloris":
        result = slowloris(int(args[0]), float(args[1]))
    elif mode == "parallel":
        result = parallel(int(args[0]))
    elif mode == "malformed":
        result = malformed(args[0])
    elif mode == "launch-as":
        result = launch_as(args[0], int(args[1]), int(args[2]), args[3], args[4])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
