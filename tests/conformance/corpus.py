"""The corpus: submit files run through HTCondor's own docker universe and through condor_docker.

Each `Case` is one submit file (plus the files it needs and, for condor_hold,
condor_rm, ..., a `drive` step). By default everything a user sees must be the
same in both pools (`compare`). A case where we differ on purpose says why in
`ours_better` and checks our behaviour in `check_ours`; a case where native is
broken here says so in `native_bug` and checks ours against HTCondor's documented
behaviour; a gap of ours is `xfail` (strict) with one line.

Images: <<registry>> (the registry test image, whose CMD echoes a line), <<local>>
(present only in this engine) and the session's variants from IMAGE_VARIANTS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from harness import HELD, RUNNING, SUSPENDED, Outcome, Run, wait_final

REGISTRY = "127.0.0.1:5000"
BASE = "condor-docker-test/busybox:local"
REGISTRY_IMAGE = f"{REGISTRY}/condor-docker-test/busybox:1"
LOCAL_IMAGE = BASE

IMAGE_VARIANTS = {
    "cmd": f'FROM {BASE}\nCMD ["/bin/echo", "from-cmd"]\n',
    "entrypoint": f'FROM {BASE}\nENTRYPOINT ["/bin/echo", "from-entrypoint"]\n',
    "both": f'FROM {BASE}\nENTRYPOINT ["/bin/echo", "ep"]\nCMD ["from-cmd"]\n',
    "neither": f'FROM {BASE}\nCMD []\n',
}

ALL_FIELDS = ("state", "exit_code", "exit_signal", "hold", "stdout", "stderr", "files", "events")


@dataclass(frozen=True)
class Case:
    name: str
    submit: str
    files: dict = field(default_factory=dict)
    drive: Callable[[Run], None] = wait_final
    compare: tuple[str, ...] | None = None      # default: ALL_FIELDS, or none when we differ on purpose
    compare_notes: tuple[str, ...] = ()         # what the drive step recorded, compared too
    ours_better: str = ""
    native_bug: str = ""
    check_ours: Callable[[Outcome], None] | None = None
    check_native: Callable[[Outcome], None] | None = None
    xfail: str = ""
    smoke: bool = False
    user: str = "cdtest1"
    submit_name: str = "job.sub"
    out: str = "out.txt"
    err: str = "err.txt"
    log: str = "job.log"
    timeout: float = 300                        # for the default drive: the longest a case may take

    def __post_init__(self) -> None:
        if self.compare is None:
            differs = self.ours_better or self.native_bug
            object.__setattr__(self, "compare", () if differs else ALL_FIELDS)


def docker(*lines: str, image: str = "<<registry>>", network: str = "none", memory: str = "64M",
           queue: str = "queue") -> str:
    """A docker-universe submit file: the usual streams and log, then the case's own lines."""
    head = ["universe = docker", f"docker_image = {image}"]
    if network:
        head.append(f"docker_network_type = {network}")
    head += ["should_transfer_files = YES", "output = out.txt", "error = err.txt", "log = job.log",
             f"request_memory = {memory}", "request_cpus = 1", "request_disk = 10M"]
    return "\n".join(head + list(lines) + [queue, ""])


def sh(command: str, *lines: str, **kw) -> str:
    """A job running `/bin/sh -c command` from the image (command in V2 single quotes)."""
    quoted = command.replace("'", "''").replace('"', '""')
    return docker("executable = /bin/sh", "transfer_executable = false",
                  f"arguments = \"-c '{quoted}'\"", *lines, **kw)


# -- drive steps ---------------------------------------------------------------------------

def drive_hold_release(run: Run) -> None:
    run.wait_state({RUNNING})
    run.wait_file("started", b"yes")
    run.tool("condor_hold")
    run.wait_state({HELD})
    run.wait_events(1, 12)   # the held event is written once the job is off the slot: release after that,
                             # as a user who reads the log would (earlier, the log order is a race in both)
    run.notes["held_with"] = run.pool.condor("condor_q", str(run.job.cluster), "-af", "HoldReasonCode",
                                             "HoldReasonSubCode", check=False).stdout.strip()
    run.tool("condor_release")
    run.wait_not(HELD)
    wait_final(run)


def drive_rm(run: Run) -> None:
    run.wait_state({RUNNING})
    run.wait_file("started", b"yes")
    run.tool("condor_rm")
    run.wait_state({None})


def drive_vacate(run: Run) -> None:
    run.wait_state({RUNNING})
    run.wait_file("started", b"yes")
    run.tool("condor_vacate_job")
    run.wait_events(1, 4)                # evicted
    wait_final(run)


def drive_suspend(run: Run) -> None:
    run.wait_state({RUNNING})
    run.wait_file("started", b"yes")
    run.tool("condor_suspend")
    run.wait_state({SUSPENDED})
    time.sleep(4)
    run.notes["while_suspended"] = _scratch_file(run, "ticks")
    time.sleep(3)
    run.notes["still_suspended"] = _scratch_file(run, "ticks") == run.notes["while_suspended"]
    run.tool("condor_continue")
    wait_final(run)


def _scratch_file(run: Run, name: str) -> bytes:
    for scratch in run.pool.scratch_dirs(run.job.cluster):
        try:
            with open(f"{scratch}/{name}", "rb") as stream:
                return stream.read()
        except OSError:
            continue
    return b"<none>"


def drive_tail(run: Run) -> None:
    run.wait_state({RUNNING})
    run.wait_file("started", b"yes")
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline and "tail-line-2" not in text:
        text = run.pool.condor("condor_tail", "-maxbytes", "200", f"{run.job.cluster}.0", user=run.job.user,
                               check=False, timeout=60).stdout
        time.sleep(1)
    run.notes["tail"] = text.strip()
    run.pool.condor("condor_tail", "-stderr", "-maxbytes", "200", f"{run.job.cluster}.0", user=run.job.user,
                    check=False)
    wait_final(run)


def wait_dag(run: Run) -> None:
    wait_final(run, timeout=400)


# -- checks of our own behaviour where it differs on purpose ------------------------------

def held_with(code: int, subcode: int, words: str = "") -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert (outcome.state, outcome.hold_code, outcome.hold_subcode) == ("held", code, subcode), outcome.summary()
        assert words in outcome.hold_reason, outcome.hold_reason
    return check


def completed(exit_code: int | None = 0, stdout: bytes | None = None, signal: int | None = None
              ) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert outcome.state == "done", outcome.summary()
        assert (outcome.exit_code, outcome.exit_signal) == (exit_code, signal), outcome.summary()
        if stdout is not None:
            assert outcome.stdout == stdout, outcome.summary()
    return check


def either(*checks: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    """A native outcome that depends on timing: any one of the checks passing is native's behaviour."""
    def check(outcome: Outcome) -> None:
        failures = []
        for one in checks:
            try:
                one(outcome)
                return
            except AssertionError as err:
                failures.append(str(err))
        raise AssertionError(" / ".join(failures))
    return check


def _stood_still(outcome: Outcome) -> None:
    assert outcome.notes["while_suspended"] not in (b"<none>", b""), outcome.notes
    assert outcome.notes["still_suspended"] is True, outcome.notes


def _tail_seen(outcome: Outcome) -> None:
    assert outcome.notes["tail"].endswith("tail-line-2"), outcome.notes


# -- the corpus ----------------------------------------------------------------------------

MARK = "echo yes > started; "          # the drive steps wait for this file in the scratch dir

CASES: list[Case] = [
    # arguments: V2 and V1 syntax, quoting, escapes, unicode
    Case("args-v2-words", docker("executable = /bin/echo", "transfer_executable = false",
                                 "arguments = \"one 'two three' four\""), smoke=True),
    Case("args-v2-single-quote", docker("executable = /bin/echo", "transfer_executable = false",
                                        "arguments = \"'it''s' done\"")),
    Case("args-v2-double-quote", docker("executable = /bin/echo", "transfer_executable = false",
                                        'arguments = "say ""hi"" now"')),
    Case("args-v2-backslash", docker("executable = /bin/sh", "transfer_executable = false",
                                     "arguments = \"-c 'printf %s\\\\n hi there'\""), smoke=True),
    Case("args-v2-backslash-tr", docker("executable = /bin/sh", "transfer_executable = false",
                                        "arguments = \"-c 'printf a0b | tr \\\\060 x; echo'\"")),
    Case("args-v2-empty-arg", docker("executable = /bin/sh", "transfer_executable = false",
                                     "arguments = \"-c 'printf [%s] \"\"$@\"\"' x a '' b\"")),
    Case("args-v2-shell-chars", sh('x=5; echo "$x" "a;b" | tr ";" ":"; echo *.sub | wc -w')),
    Case("args-v1-words", docker("executable = /bin/echo", "transfer_executable = false",
                                 "arguments = a b   c")),
    Case("args-v1-escaped-quote", docker("executable = /bin/echo", "transfer_executable = false",
                                         'arguments = say \\"hi\\"')),
    Case("args-v1-backslash", docker("executable = /bin/echo", "transfer_executable = false",
                                     "arguments = a\\b c\\\\d")),
    Case("args-unicode", docker("executable = /bin/echo", "transfer_executable = false",
                                "arguments = \"héllo wörld ✓ 日本\""), smoke=True),
    Case("args-long", docker("executable = /bin/sh", "transfer_executable = false",
                             "arguments = \"-c 'echo $# ' x " + " ".join(f"a{i}" for i in range(300)) + "\"")),
    # environment
    Case("env-v1", sh('printf "%s|%s\\n" "$FOO" "$BAZ"', "environment = FOO=bar;BAZ=two words")),
    Case("env-v2", sh('printf "%s|%s\\n" "$FOO" "$BAR"', "environment = \"FOO='a b' BAR=c\""), smoke=True),
    Case("env-v2-quotes", sh('printf "%s|%s\\n" "$Q" "$D"', "environment = \"Q='it''s' D=\"\"x\"\"\"")),
    Case("env-backslash", sh('printf "%s|%s\\n" "$P" "$R"', "environment = \"P=C:\\\\dir\\\\file R=a\\\\nb\""),
         smoke=True),
    Case("env-unicode", sh('printf "%s\\n" "$U"', "environment = \"U=ünï✓\"")),
    Case("env-special", sh('printf "[%s][%s][%s]\\n" "$E" "$S" "$EQ"', "environment = \"E= S='$HOME' EQ=a=b\"")),
    Case("env-and-custom-attr-backslash", sh("grep -h ^Custom .job.ad",
                                             "+Custom = \"a\\\\b \\\"q\\\" é\"")),
    # images: CMD only, ENTRYPOINT only, both, neither; with and without executable and override
    Case("image-default-cmd-no-executable", docker()),
    Case("image-cmd-no-executable", docker(image="<<cmd>>"), smoke=True),
    Case("image-cmd-with-executable", docker("executable = /bin/echo", "transfer_executable = false",
                                             "arguments = mine", image="<<cmd>>")),
    Case("image-entrypoint-no-executable", docker(image="<<entrypoint>>"), smoke=True),
    Case("image-entrypoint-with-executable", docker("executable = /bin/echo", "transfer_executable = false",
                                                    "arguments = mine", image="<<entrypoint>>")),
    Case("image-entrypoint-override", docker("executable = /bin/echo", "transfer_executable = false",
                                             "arguments = mine", "docker_override_entrypoint = true",
                                             image="<<entrypoint>>")),
    Case("image-both-no-executable", docker(image="<<both>>")),
    Case("image-both-with-executable", docker("executable = /bin/echo", "transfer_executable = false",
                                              "arguments = mine", image="<<both>>")),
    Case("image-both-override", docker("executable = /bin/echo", "transfer_executable = false",
                                       "arguments = mine", "docker_override_entrypoint = true", image="<<both>>")),
    Case("image-neither-no-executable", docker(image="<<neither>>"), compare=("state", "hold", "events"),
         ours_better="the held job's out/err come back, stderr saying why in one line (native leaves none)",
         check_ours=held_with(3, 18, "No command specified")),
    Case("image-neither-with-executable", docker("executable = /bin/echo", "transfer_executable = false",
                                                 "arguments = mine", image="<<neither>>")),
    Case("image-entrypoint-transferred-script", docker("executable = run.sh", "arguments = x",
                                                       image="<<entrypoint>>"),
         files={"run.sh": "#!/bin/sh\necho script $@\n"}),
    # executables
    Case("exe-transferred-script", docker("executable = run.sh", "arguments = \"a 'b c'\""),
         files={"run.sh": "#!/bin/sh\necho \"$0\" \"$#\" \"$@\"\nexit 3\n"}, smoke=True),
    Case("exe-absolute-in-image", docker("executable = /bin/busybox", "transfer_executable = false",
                                         "arguments = echo from-image")),
    Case("exe-absolute-transferred", docker("executable = /bin/busybox", "arguments = echo transferred")),
    Case("exe-missing-in-image", docker("executable = /bin/no-such-command", "transfer_executable = false"),
         ours_better="a precise hold (3/17 'Cannot run ... in image') instead of completing with exit 127",
         check_ours=held_with(3, 17, "Cannot run /bin/no-such-command in image"), check_native=completed(127)),
    Case("exe-script-bad-interpreter", docker("executable = run.sh"),
         files={"run.sh": "#!/no/such/interpreter\necho never\n"},
         ours_better="a precise hold (3/17 'Cannot run ./run.sh in image') instead of completing with exit 127",
         check_ours=held_with(3, 17, "Cannot run ./run.sh in image"), check_native=completed(127)),
    # files: input, output, error, transfers, dirs, initialdir
    Case("stdin-from-input", sh("cat; echo end", "input = in.txt"), files={"in.txt": "line one\nline two\n"},
         native_bug="HTCondor's own docker universe never gives the container the `input` file as stdin",
         compare=("state", "exit_code", "events"), check_ours=completed(0, b"line one\nline two\nend\n"),
         check_native=completed(0, b"end\n")),
    Case("stdout-and-stderr", sh("echo to-out; echo to-err >&2; echo more-out"), smoke=True),
    Case("stdout-binary", sh("printf 'a\\000b\\377c'")),
    Case("stdout-no-newline", sh("printf x")),
    Case("stdout-5mb", sh("head -c 5000000 /dev/zero | tr '\\000' 'z'")),
    Case("input-files", sh("cat a.txt data/b.txt", "transfer_input_files = a.txt, data/b.txt"),
         files={"a.txt": "A\n", "data/b.txt": "B\n"}),
    Case("input-dir", sh("cat data/b.txt data/c.txt", "transfer_input_files = data"),
         files={"data/b.txt": "B\n", "data/c.txt": "C\n"}),
    Case("output-files-listed", sh("echo 1 > a.txt; echo 2 > b.txt; echo 3 > c.txt",
                                   "transfer_output_files = a.txt, b.txt")),
    Case("output-files-auto", sh("echo 1 > new1.txt; mkdir -p d; echo 2 > d/x.txt")),
    Case("output-dir", sh("mkdir -p outdir/sub; echo 1 > outdir/a; echo 2 > outdir/sub/b",
                          "transfer_output_files = outdir"), smoke=True),
    Case("output-remaps", sh("echo 1 > a.txt", "transfer_output_files = a.txt",
                             "transfer_output_remaps = \"a.txt = renamed.txt\"")),
    Case("output-missing-file", sh("echo only-out", "transfer_output_files = never-written.txt")),
    Case("initialdir", sh("cat in.txt; echo out > result.txt", "initialdir = run1",
                          "transfer_input_files = in.txt"),
         files={"run1/in.txt": "from run1\n"}, out="run1/out.txt", err="run1/err.txt", log="run1/job.log"),
    # exit codes and signals
    Case("exit-0", sh("exit 0")),
    Case("exit-1", sh("echo failing >&2; exit 1"), smoke=True),
    Case("exit-255", sh("exit 255"), compare=("state", "stdout", "stderr", "events"),
         native_bug="HTCondor's own docker universe reads exit codes over 128 as signals: exit 255 ends as ExitCode 0",
         check_ours=completed(255), check_native=completed(0)),
    # both read 128+N from the container (run under an init) as death by signal N
    Case("exit-137-by-code", sh("exit 137")),
    Case("signal-kill", sh("kill -9 $$"), smoke=True),
    Case("signal-term", sh("kill -TERM $$")),
    # resources
    Case("request-cpus", sh("cat /sys/fs/cgroup/cpu/cpu.shares", "request_cpus = 2")),
    Case("request-memory", sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes", memory="96M")),
    Case("request-disk", sh("head -c 1000000 /dev/zero > f; wc -c < f", "request_disk = 50M")),
    Case("oom", sh("echo eating; tail /dev/zero", memory="32M"), smoke=True, compare=("state", "hold", "events"),
         ours_better="the held job's stdout/stderr come back, stderr saying why in one line (native drops them)",
         check_ours=held_with(3, 102, "Docker job has gone over memory limit of"),
         check_native=held_with(34, 102, "Docker job has gone over memory limit of")),
    Case("over-request-disk", sh("head -c 20m /dev/zero > big; sleep 60", "request_disk = 4M"),
         ours_better="going over request_disk holds (3/103); native enforces it only on LVM-managed execute dirs",
         # native on a loaded machine once ended it by SIGTERM instead (timing of its disk checks)
         check_ours=held_with(3, 103, "over its disk limit"),
         check_native=either(completed(0), completed(None, signal=15))),
    # images and pulls
    Case("bad-image", docker("executable = /bin/true", "transfer_executable = false",
                             image=f"{REGISTRY}/condor-docker-test/no-such-image:1"), smoke=True),
    Case("bad-image-reference", docker("executable = /bin/true", "transfer_executable = false",
                                       image="Not/A:Valid:Ref")),
    Case("local-only-image", sh("echo local", image="<<local>>")),
    Case("pull-policy-always", sh("echo pulled", "docker_pull_policy = always")),
    # networks
    Case("network-none", sh("cat /proc/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' '")),
    # (the host's veths come and go with other containers: only its fixed interfaces are compared)
    Case("network-host", sh("ls /sys/class/net | grep -E '^(lo|eth0)$' | sort", network="host")),
    Case("network-nat", sh("ls /sys/class/net | sort", network="nat")),
    Case("network-admin", sh("ls /sys/class/net | sort", network="<<adminnet>>")),
    Case("container-service-names", sh("sleep 3; echo served", "container_service_names = web",
                                       "web_container_port = 8080", network="<<adminnet>>")),
    Case("docker-send-credentials", sh("echo ran", "docker_send_credentials = true")),
    # admin volumes (conftest.site_config): CONF listed, OPT listed with a MOUNT_IF, UNLISTED not listed
    Case("volume-listed", sh("cat /mnt/conf/hello; ls /mnt")),
    # (MOUNT_IF is on Owner: ours refuses at agent start one over attributes the job can write)
    Case("volume-mount-if-true", sh("cat /mnt/opt/hello; ls /mnt")),
    Case("volume-mount-if-false", sh("ls /mnt"), user="cdtest2"),
    # universe = container
    Case("universe-container", "\n".join([
        "universe = container", "container_image = docker://<<registry>>", "executable = /bin/echo",
        "transfer_executable = false", "arguments = in-a-container", "docker_network_type = none",
        "output = out.txt", "error = err.txt", "log = job.log", "request_memory = 64M",
        "request_disk = 10M", "queue", ""]), smoke=True),
    # the job's life: condor_hold/release, rm, vacate, suspend/continue, tail
    # not in the smoke set: on 25.13.2 native's released job matched but did not run again for 5 min (not yet understood)
    Case("hold-release", sh(MARK + "sleep 4; echo finished"), drive=drive_hold_release),
    Case("rm-running", sh(MARK + "sleep 300"), drive=drive_rm),
    Case("vacate", sh(MARK + "sleep 4; echo finished"), drive=drive_vacate),
    Case("suspend-continue", sh("i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo $i > ticks; "
                                "[ $i = 1 ] && echo yes > started; sleep 1; done; echo finished"),
         drive=drive_suspend, compare_notes=("still_suspended",), check_ours=_stood_still,
         check_native=_stood_still),
    Case("tail", sh(MARK + "echo tail-line-1; echo tail-line-2; echo err-line >&2; sleep 8; echo finished"),
         drive=drive_tail, compare_notes=("tail",), check_ours=_tail_seen),
    # policies
    Case("periodic-hold", sh(MARK + "sleep 300",
                             "periodic_hold = JobStatus == 2 && time() - EnteredCurrentStatus > 2",
                             "periodic_hold_reason = \"too long\"", "periodic_hold_subcode = 42")),
    Case("periodic-remove", sh(MARK + "sleep 300",
                               "periodic_remove = JobStatus == 2 && time() - EnteredCurrentStatus > 2")),
    Case("on-exit-hold", sh("exit 3", "on_exit_hold = ExitCode == 3", "on_exit_hold_reason = \"three\"",
                            "on_exit_hold_subcode = 7"), smoke=True),
    Case("on-exit-remove-false-then-true", sh("echo run; exit 2",
                                              "on_exit_remove = NumJobStarts >= 2")),
    Case("max-retries", sh("echo try; exit 1", "max_retries = 2")),
    Case("max-retries-success-code", sh("exit 4", "max_retries = 3", "success_exit_code = 4")),
    # DAGMan
    Case("dagman", "JOB A a.sub\nJOB B b.sub\nPARENT A CHILD B\n", submit_name="job.dag", drive=wait_dag,
         files={"a.sub": sh("echo node-a").replace("out.txt", "a.out").replace("err.txt", "a.err"),
                "b.sub": sh("echo node-b").replace("out.txt", "b.out").replace("err.txt", "b.err")},
         out="a.out", err="b.out"),
]
