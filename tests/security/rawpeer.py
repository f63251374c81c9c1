"""A hostile peer that sends raw bytes to the agent; the tests run this file's text as cdtest1 (`python -c`).

    rawpeer.py SOCKET        reads cases from stdin, one JSON line each, answers one JSON line each

A case:  {"chunks": [base64, ...], "fds": N, "shutdown": bool, "wait": seconds, "pause": seconds}
    each chunk is sent as it is (the first with N fds of /dev/null attached,
    SCM_RIGHTS), `pause` seconds apart; then the write side is shut down when
    `shutdown`; then replies are read for at most `wait` seconds.
An answer: {"outcome": "reply" | "closed" | "timeout" | "send-error" | "connect-error",
            "replies": [message, ...], "garbage": bytes that were not a JSON line, "seconds": float}
    "reply": the agent answered and closed; "closed": it closed without a word;
    "timeout": it neither answered nor closed within `wait` (a hang).
Stdlib only (what a job has), so it runs as any user; one process serves many cases.
"""
import base64
import json
import os
import socket
import sys
import time


def one(path, case):
    started = time.monotonic()
    result = {"outcome": None, "replies": [], "garbage": ""}
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
    except OSError as err:
        return {"outcome": "connect-error", "error": str(err), "replies": [], "seconds": 0.0}
    buffer = b""
    try:
        try:
            for index, chunk in enumerate(case.get("chunks") or []):
                data = base64.b64decode(chunk)
                count = case.get("fds", 0) if index == 0 else 0
                if count:
                    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
                    try:
                        sent = socket.send_fds(sock, [data], fds)
                    finally:
                        for fd in fds:
                            os.close(fd)
                    data = data[sent:]
                if data:
                    sock.sendall(data)
                if case.get("pause"):
                    time.sleep(case["pause"])
            if case.get("shutdown"):
                sock.shutdown(socket.SHUT_WR)
        except OSError as err:   # the agent may close early (a too-long line): read what it said
            result["send_error"] = str(err)
        deadline = started + float(case.get("wait", 10))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result["outcome"] = "timeout"
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                result["outcome"] = "timeout"
                break
            except OSError as err:   # ECONNRESET: the agent closed with our bytes unread
                result["reset"] = str(err)
                data = b""
            if not data:
                result["outcome"] = "reply" if result["replies"] else "closed"
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    result["replies"].append(json.loads(line))
                except ValueError:
                    result["garbage"] += line.decode(errors="replace")[:200]
    finally:
        sock.close()
    result["garbage"] += buffer.decode(errors="replace")[:200]
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def main():
    path = sys.argv[1]
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(one(path, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
