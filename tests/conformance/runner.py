"""Run the whole corpus in both pools at once and collect every case's Outcome.

Each (pool, case) is one thread: submit, drive (the case's condor_hold/condor_rm/...
steps, or just wait), collect, remove what is left in the queue. Submits are
throttled (condor_submit is the costly part on 2 cores); waiting is shared through
one QueueWatcher per pool. A case that raises gets an Outcome with state "error"
and the traceback, so one broken case fails its own test, not the session.
"""
from __future__ import annotations

import os
import pwd
import re
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from harness import Outcome, QueueWatcher, Run, cleanup, collect, wait_final
from poolfixture import Job, Pool

_SUBMITS = threading.Semaphore(4)


def render(text: str, images: dict[str, str]) -> str:
    """The case's text with its <<image>> tokens replaced by this session's references."""
    for key, reference in images.items():
        text = text.replace(f"<<{key}>>", reference)
    return text


def submit(pool: Pool, case, images: dict[str, str]) -> Job:
    """condor_submit (or condor_submit_dag) the case as its user from a fresh submit dir."""
    entry = pwd.getpwnam(case.user)
    directory = tempfile.mkdtemp(prefix=f"{case.name}-", dir=pool.submit_root)
    os.chown(directory, entry.pw_uid, entry.pw_gid)
    os.chmod(directory, 0o755)
    files = dict(case.files)
    files[case.submit_name] = case.submit
    for name, content in files.items():
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _chown_dirs(directory, os.path.dirname(path), entry)
        if isinstance(content, str):
            content = render(content, images).encode()
        with open(path, "wb") as stream:
            stream.write(content)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, 0o755 if name.endswith(".sh") else 0o644)
    tool = ["condor_submit_dag", "-batch-name", case.name] if case.submit_name.endswith(".dag") \
        else ["condor_submit"]
    with _SUBMITS:
        result = pool.condor(*tool, case.submit_name, user=case.user, cwd=directory, check=False, timeout=120)
    found = re.search(r"(\d+) job\(s\) submitted to cluster (\d+)\.", result.stdout)
    if not found:
        raise SubmitRefused(f"{result.stdout}{result.stderr}".strip())
    return Job(cluster=int(found.group(2)), dir=directory, user=case.user, count=int(found.group(1)))


def _chown_dirs(top: str, path: str, entry) -> None:
    while os.path.abspath(path) != os.path.abspath(top):
        os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, 0o755)
        path = os.path.dirname(path)


class SubmitRefused(RuntimeError):
    """condor_submit refused the file: itself an outcome to compare."""


def run_one(pool: Pool, watcher: QueueWatcher, case, images: dict[str, str]) -> Outcome:
    started = time.monotonic()
    try:
        job = submit(pool, case, images)
        submitted = time.monotonic()
    except SubmitRefused as refused:
        return Outcome(state="refused", stderr=str(refused).encode())
    run = Run(pool=pool, watcher=watcher, job=job, submitted_at=submitted)
    try:
        if case.drive is wait_final:
            wait_final(run, timeout=case.timeout)
        else:
            case.drive(run)
        outcome = collect(run, tuple(case.files), out=case.out, err=case.err, log=case.log)
    except Exception:
        outcome = Outcome(state="error", stderr=traceback.format_exc().encode(), notes=dict(run.notes))
    finally:
        try:
            cleanup(run)
        except Exception:
            pass
    outcome.notes["seconds"] = round(time.monotonic() - started, 1)
    outcome.notes["submit_dir"] = job.dir
    return outcome


def run_corpus(pools: dict[str, Pool], cases: list, images: dict[str, str]) -> dict[tuple[str, str], Outcome]:
    """{(pool name, case name): Outcome} of every case in every pool, all running at once."""
    watchers = {name: QueueWatcher(pool) for name, pool in pools.items()}
    try:
        with ThreadPoolExecutor(max_workers=len(pools) * len(cases)) as executor:
            futures = {(name, case.name): executor.submit(run_one, pool, watchers[name], case, images)
                       for case in cases for name, pool in pools.items()}
            return {key: future.result() for key, future in futures.items()}
    finally:
        for watcher in watchers.values():
            watcher.close()
