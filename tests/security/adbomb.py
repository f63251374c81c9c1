"""Ad bombs: ad lines that crashed (or could crash or stall) whoever parses them; run as cdtest1 (`python -c`).

    adbomb.py SOCKET SCRATCH CASE WHERE ACTION     prints one JSON line
        WHERE   job | machine        the file the job user rewrites (.job.ad, .machine.ad)
        ACTION  launch               a launch with [/dev/null, out, out] as fds
                prepare              prepare with job_ad null (the agent reads .job.ad)
                prepare-text         prepare with the (bombed) job ad's text in the request
    adbomb.py - - CASE                prints the bomb's line(s) (what the tests feed the hook)

Stdlib and condor_docker.wire only: what a job has.  The user writes the file
itself, in its own scratch dir, then asks the agent.
"""
import json
import os
import sys
import time

MB = 1 << 20


def bomb(case):
    """The `Attr = Value` line(s) of one case (no trailing newline)."""
    if case == "operator-chain":           # 50,000 terms, ~100 KB: str() of it recursed in C++ (rc 139)
        return "Bomb = " + "+".join(["1"] * 50000)
    if case == "deep-parens":
        return "Bomb = " + "(" * 100000 + "1" + ")" * 100000
    if case == "deep-lists":
        return "Bomb = " + "{" * 100000 + "1" + "}" * 100000
    if case == "nested-ads":                # [a = [a = [a = ... 1 ] ] ]
        return "Bomb = " + "[a = " * 50000 + "1" + " ]" * 50000
    if case == "select-chain":              # a.b.b.b...: crashed classad2's lookup (rc 139)
        return "Bomb = a" + ".b" * 100000
    if case == "subscript-chain":           # a[0][0]...: crashed it too, at ~1,000,000
        return "Bomb = a" + "[0]" * 1000000
    if case == "quoted-names":              # an independent review: 'a"b' hid the chain from the counter
        return "Bomb = 'a\"b' + " + "+".join(["1"] * 300000) + " + 'c\"d'"
    if case == "is-chain":                  # an independent review: `is` was no operator (rc 139)
        return "Bomb = " + " is ".join(["1"] * 300000)
    if case == "huge-string":               # 3.9 MB in the image name: parsed, then refused by name
        return 'DockerImage = "' + "a" * (3900 * 1024) + '"'
    if case == "huge-file":                 # over the agent's 4 MB ad limit
        return "Pad = \"" + "x" * (4 * MB + 4096) + "\""
    if case == "many-attributes":           # 150,000 lines, ~2.8 MB, each a fresh name
        return "\n".join(f"Attr{index} = {index}" for index in range(150000))
    if case == "reference-chain":           # the image through 100,000 references (classad2 stops, deep)
        return "\n".join(["DockerImage = Ref0"] + [f"Ref{i} = Ref{i + 1}" for i in range(100000)]
                         + ['Ref100000 = "busybox"'])
    if case == "growth-chain":              # an independent review: short lines, each 4x the last: 4 GB at
        # evaluation, and classad2 aborted the process on the allocation (SIGABRT, std::bad_alloc)
        return "\n".join(['Bomb0 = "' + "x" * (256 * 1024) + '"']
                         + [f"Bomb{i} = strcat(Bomb{i - 1}, Bomb{i - 1}, Bomb{i - 1}, Bomb{i - 1})" for i in range(1, 8)]
                         + ["WantDockerGrown = size(Bomb7) > 0"])
    raise SystemExit(f"unknown case {case}")


CASES = ("operator-chain", "deep-parens", "deep-lists", "nested-ads", "select-chain", "subscript-chain",
         "quoted-names", "is-chain", "huge-string", "huge-file", "many-attributes", "reference-chain", "growth-chain")


def rewrite(path, case):
    with open(path) as stream:
        lines = stream.read().splitlines()
    text = "\n".join(lines) + "\n" + bomb(case) + "\n"
    with open(path + ".new", "w") as stream:
        stream.write(text)
    os.rename(path + ".new", path)
    return text


def main():
    sock_path, scratch, case = sys.argv[1], sys.argv[2], sys.argv[3]
    if sock_path == "-":
        sys.stdout.write(bomb(case) + "\n")
        return
    where, action = sys.argv[4], sys.argv[5]
    from condor_docker.wire.protocol import AgentClient
    text = rewrite(os.path.join(scratch, ".job.ad" if where == "job" else ".machine.ad"), case)
    with open(os.path.join(scratch, ".job.ad")) as stream:
        job_text = stream.read()
    started = time.monotonic()
    client = AgentClient(sock_path, timeout=120)
    reply = {}
    try:
        if action == "launch":
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(os.path.join(scratch, "out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                env = {"_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_SLOT": "slot1_1"}
                for reply in client.stream("launch", fds=[null, out, out], scratch_dir=scratch, starter_env=env):
                    if "ok" in reply:
                        break
            finally:
                os.close(null)
                os.close(out)
        elif action == "prepare":
            reply = client.call("prepare", job_ad=None, scratch_dir=scratch)
        elif action == "prepare-text":
            reply = client.call("prepare", job_ad=job_text, scratch_dir=scratch)
        else:
            raise SystemExit(f"unknown action {action}")
    except Exception as err:   # AgentUnavailable: the agent closed (a too-long request) or died
        reply = {"error": f"{type(err).__name__}: {err}"[:500]}
    print(json.dumps({"reply": reply, "seconds": round(time.monotonic() - started, 3), "bytes": len(text)}))


if __name__ == "__main__":
    main()
