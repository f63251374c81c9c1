"""The agent's job ops: prepare, launch, reattach, signal, suspend, resume, cleanup(_starter_job), status.

Each op starts from the peer's kernel credentials (`RequestContext`), reads the
scratch dir only through `policy`, and acts on a container only when its
`org.condor_docker.uid` label is the peer's (root may act on any).

The agent tracks the jobs it is serving (container name -> `TrackedJob`); the
reaper keeps tracked containers, and the memory budget is the sum over them.
A launch runs the container in the connection's thread; a watcher
(`launcher_watch.LauncherWatch`) polls the launcher's socket and state: when the
launcher dies (the starter's hard kill) the container is killed with no grace
and removed; when the starter suspends it (SIGSTOP or freezer) the container is
paused, and unpaused when it continues.
"""
from __future__ import annotations

import dataclasses
import logging
import signal as signals
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.failures import Code, Failure, bound_requeue
from ..core.labels import (
    AGENT_LABEL,
    CGROUP_PARENT_LABEL,
    CLUSTER_LABEL,
    LAUNCHER_PID_LABEL,
    LAUNCHER_START_LABEL,
    PROC_LABEL,
    SCRATCH_DIR_LABEL,
    SLOT_LABEL,
    STARTER_PID_LABEL,
    UID_LABEL,
    own_containers_filter,
)
from ..core.request import JobRequest
from ..core.settings import Settings
from ..core.spec import ContainerSpec, build_spec
from ..engine.client import ContainerState, Engine
from ..engine.lifecycle import ContainerRun, ExitResult, JobIO
from ..host import cgroups, procs
from ..wire import ops
from . import launcher_watch, policy, starter_proof
from .context import RequestContext
from .scratch import ScratchDir, open_scratch, read_scratch_ads, request_from_texts
from .slots import MachineResources, SlotSource, check_memory_budget, machine_resources

log = logging.getLogger("condor_docker.agent_jobs")



@dataclass
class TrackedJob:
    name: str
    job_id: str
    uid: int
    memory_mb: int
    since: float
    run: ContainerRun | None = None
    container_id: str | None = None
    scratch: tuple[int, int] | None = None    # (dev, ino) of its scratch dir: one live container each
    starter_pid: int | None = None             # its proven condor_starter: one live container each

    def describe(self) -> dict:
        return {"container": self.name, "job": self.job_id, "uid": self.uid, "memory_mb": self.memory_mb,
                "container_id": self.container_id, "since": self.since}


def bounded(failure: Failure, request: JobRequest | None, settings: Settings) -> Failure:
    """core.failures.bound_requeue, counting the job's starts as its ad does (none before the ad is read)."""
    return bound_requeue(failure, request.num_job_starts if request is not None else 0, settings.max_requeues)


def result_dict(result: ExitResult) -> dict:
    """ExitResult.to_dict(), without deep-copying the Failure (asdict cannot copy an exception)."""
    return dataclasses.replace(result, failure=None).to_dict() | {
        "failure": result.failure.to_dict() if result.failure else None}


class JobService:
    def __init__(self, settings: Settings, engine: Engine, cache: Any,
                 machine: MachineResources | None = None, slots: SlotSource | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = cache
        self.machine = machine or machine_resources()
        self.slots = slots or SlotSource(settings, self.machine.cpus, self.machine.memory_mb)
        self._jobs: dict[str, TrackedJob] = {}
        self._lock = threading.Lock()
        self._cgroup_driver: str | None = None

    # -- tracking ------------------------------------------------------------------
    def tracked_ids(self) -> set[str]:
        with self._lock:
            return {v for job in self._jobs.values() for v in (job.name, job.container_id) if v}

    def _track(self, request: JobRequest, spec: ContainerSpec, scratch: ScratchDir | None = None) -> TrackedJob:
        """Reserve the job's memory and name, or refuse (REQUEUE when the machine is full).

        At most one live container per scratch dir (by device and inode) and per
        starter: a job that rewrites ClusterId/ProcId in its .job.ad between
        launches gets a new container name, not a second slot-sized container.
        """
        key = (scratch.identity.dev, scratch.identity.ino) if scratch is not None else None
        starter = dict(spec.labels).get(STARTER_PID_LABEL)
        starter_pid = int(starter) if starter and starter.isdigit() else None
        with self._lock:
            if spec.name in self._jobs:
                raise policy.refuse(f"container {spec.name} is already being served")
            for other in self._jobs.values():
                if key is not None and other.scratch == key:
                    raise policy.refuse(f"scratch dir {scratch.path} already has a running container "
                                        f"({other.name}): one container per job")
                if starter_pid is not None and other.starter_pid == starter_pid:
                    raise policy.refuse(f"condor_starter {starter_pid} already runs container {other.name}: "
                                        "one container per job")
            running = sum(job.memory_mb for job in self._jobs.values())
            check_memory_budget(spec.memory_mb, running, self.machine, request.job_id)
            job = TrackedJob(spec.name, request.job_id, request.uid, spec.memory_mb, time.time(),
                             scratch=key, starter_pid=starter_pid)
            self._jobs[spec.name] = job
            return job

    def _untrack(self, job: TrackedJob) -> None:
        with self._lock:
            if self._jobs.get(job.name) is job:
                del self._jobs[job.name]

    def recover(self) -> list[str]:
        """At start: leave running managed containers for their launchers to reattach."""
        try:
            containers = self.engine.managed_containers(own_containers_filter(self.settings.agent_id))
        except Failure as err:
            log.warning("cannot list managed containers at start: %s", err.reason)
            return []
        names = []
        for container in containers:
            name = str((container.get("Names") or ["?"])[0]).lstrip("/")
            log.info("found %s container %s (%s) of uid %s: left for its launcher to reattach "
                     "(the reaper removes it if nobody does)", container.get("State"), name,
                     str(container.get("Id", ""))[:12], (container.get("Labels") or {}).get(UID_LABEL))
            names.append(name)
        return names

    # -- building a job ----------------------------------------------------------------
    def _build(self, ctx: RequestContext, scratch_dir: str, *, job_text: str | None = None,
                starter_env: Mapping[str, str] | None = None, slot: str | None = None
                ) -> tuple[JobRequest, ContainerSpec, ScratchDir]:
        """Check the peer, open its scratch dir once (held fd), read and check the job; caller closes it."""
        policy.check_job_peer(ctx.uid, ctx.gid)
        if job_text is not None and not isinstance(job_text, str):
            raise policy.refuse(f"{ctx.op}: job_ad must be the job ad's text")
        env = dict(starter_env or {})   # checked by ops.Launch
        scratch = open_scratch(scratch_dir, ctx.uid, self.settings)
        try:
            file_job_text, machine_text = read_scratch_ads(scratch, job_ad_required=job_text is None)
            proof = starter_proof.find_starter(ctx.pid, scratch.job_dir,
                                               policy.trusted_owners())
            policy.check_peer_still_there(ctx)   # what /proc said may be a new process's with the same pid
            if proof is None and self.settings.require_starter:
                raise policy.refuse(f"process {ctx.pid} is not a job of the condor_starter of {scratch.path} "
                                    "(CONDOR_DOCKER_REQUIRE_STARTER = true)")
            claimed_slot = slot or env.get("_CONDOR_SLOT")
            request = request_from_texts(job_text if job_text is not None else file_job_text, machine_text,
                                                uid=ctx.uid, gid=ctx.gid, scratch_dir=scratch.path,
                                                starter_env=env,
                                                slot=(proof.slot if proof and proof.slot else claimed_slot))
            ctx.job = request.job_id
            claim = str(proof.starter_pid) if proof is not None else None
            trusted = self.slots.resources(request.slot, claim)
            if proof is None or not proof.slot:   # the slot name came from the job
                policy.check_slot_user(ctx.uid, trusted)
            request = policy.check_resources(request, machine_text, trusted)
            spec = build_spec(request, self.settings)
            if proof is not None:
                spec = dataclasses.replace(spec, labels=spec.labels + ((STARTER_PID_LABEL, str(proof.starter_pid)),))
            ctx.container = spec.name
            policy.check_spec(spec, self.settings, request.vouched)
        except BaseException:
            scratch.close()
            raise
        return request, spec, scratch

    def _owned_container(self, ctx: RequestContext, name: str):
        if not isinstance(name, str) or not name:
            raise policy.refuse("no container named")
        ctx.container = name
        state = self.engine.inspect(name)
        if state is None:
            raise Failure(Code.JOB_INTERRUPTED, f"container {name} does not exist (any more)")
        policy.check_container_owner(ctx.uid, name, state.labels)
        policy.check_same_job(ctx.pid, ctx.uid, name, state.labels, require_starter=self.settings.require_starter)
        policy.check_peer_still_there(ctx)
        owner_agent = state.labels.get(AGENT_LABEL)
        if owner_agent not in (None, self.settings.agent_id):  # a sibling execute node's, same engine
            raise policy.refuse(f"container {name} belongs to another condor_docker agent ({owner_agent})")
        ctx.job = f"{state.labels.get(CLUSTER_LABEL, '?')}.{state.labels.get(PROC_LABEL, '?')}"
        return state

    def _check_no_live_container(self, scratch: ScratchDir) -> None:
        """Also after an agent restart, before the running job's launcher has reattached."""
        found = self.engine.managed_containers(own_containers_filter(self.settings.agent_id,
                                                                     (SCRATCH_DIR_LABEL, scratch.path)))
        live = [c for c in found if c.get("State") in ("created", "running", "paused", "restarting")]
        if live:
            name = str((live[0].get("Names") or ["?"])[0]).lstrip("/")
            raise policy.refuse(f"scratch dir {scratch.path} already has a container ({name}): one container per job")

    def _io(self, ctx: RequestContext) -> JobIO:
        if len(ctx.fds) != 3:
            raise policy.refuse(f"{ctx.op} needs the job's stdin, stdout and stderr (got {len(ctx.fds)} fds)")
        return JobIO(stdout_fd=ctx.fds[1], stderr_fd=ctx.fds[2], stdin_fd=ctx.fds[0])

    # -- ops -------------------------------------------------------------------------
    def prepare(self, ctx: RequestContext, asked: ops.Prepare) -> dict:
        request = None
        try:
            request, spec, scratch = self._build(ctx, asked.scratch_dir, job_text=asked.job_ad)
            scratch.close()
            with self._lock:
                running = sum(job.memory_mb for job in self._jobs.values())
            check_memory_budget(spec.memory_mb, running, self.machine, request.job_id)
            progress = None
            if asked.progress:  # the hook asked for event lines while the image is pulled
                progress = lambda snapshot: ctx.send_event(ops.pull_progress(snapshot))  # noqa: E731
            self.cache.ensure(spec.image, request.pull_policy, on_progress=progress)
        except Failure as failure:
            raise bounded(failure, request, self.settings) from None
        return ops.PrepareReply(spec.image).to_message()

    def launch(self, ctx: RequestContext, asked: ops.Launch) -> dict:
        request = scratch = None
        try:
            io = self._io(ctx)
            request, spec, scratch = self._build(ctx, asked.scratch_dir, starter_env=asked.starter_env)
            parent = self._cgroup_parent(ctx, spec.name)
            spec = dataclasses.replace(
                spec, cgroup_parent=parent,
                environment=spec.environment + launcher_watch.ancestor_environment(ctx.pid),
                labels=spec.labels + ((LAUNCHER_PID_LABEL, str(ctx.pid)),) + _start_label(ctx.pid) + (
                    ((CGROUP_PARENT_LABEL, parent),) if parent else ()))
            self._check_no_live_container(scratch)
            job = self._track(request, spec, scratch)
        except Failure as failure:
            if scratch is not None:
                scratch.close()
            raise bounded(failure, request, self.settings) from None
        try:
            run = ContainerRun(self.engine, spec, io, kill_grace=self._grace(request),
                               on_created=lambda cid: self._created(ctx, job, cid, scratch),
                               on_started=lambda cid: self._services(ctx, spec, cid), **self._disk_limits(request))
            return self._serve(ctx, job, run, request, pull_policy=request.pull_policy)
        finally:
            self._untrack(job)
            scratch.close()

    def reattach(self, ctx: RequestContext, asked: ops.Reattach) -> dict:
        io = self._io(ctx)
        state = self._owned_container(ctx, asked.container)
        policy.check_job_peer(ctx.uid, ctx.gid)
        labels = state.labels
        request, spec, scratch = self._build(ctx, labels.get(SCRATCH_DIR_LABEL, ""),
                                             slot=labels.get(SLOT_LABEL))
        scratch.close()  # the container exists and runs: its mount was checked before it started
        if spec.name != state.name:
            raise policy.refuse(f"container {state.name} does not match the job in its scratch dir ({spec.name})")
        parent = labels.get(CGROUP_PARENT_LABEL)   # set by this agent at create: read and removed at the end
        if parent and parent.endswith("/" + spec.name) and ".." not in parent.split("/"):
            spec = dataclasses.replace(spec, cgroup_parent=parent)
        job = self._track(request, spec, scratch)
        try:
            run = ContainerRun(self.engine, spec, io, kill_grace=self._grace(request),
                               on_created=lambda cid: self._created(ctx, job, cid), **self._disk_limits(request))
            log.info("reattaching %s (%s) for launcher pid %d; output written while no agent was attached is lost",
                     spec.name, state.id[:12], ctx.pid)
            return self._serve(ctx, job, run, request, pull_policy=None, adopting=state)
        finally:
            self._untrack(job)

    def _cgroup_parent(self, ctx: RequestContext, name: str) -> str | None:
        """`<launcher's job cgroup (v1) or slot slice (v2), else /condor_docker>/<name>` (see
        host/cgroups.py); None unless cgroupfs."""
        if self._cgroup_driver is None:
            try:
                self._cgroup_driver = str(self.engine.info().get("CgroupDriver") or "")
            except Failure as failure:
                log.warning("cannot ask the engine for its cgroup driver: %s", failure.reason)
                return None
        v2 = cgroups.is_cgroup_v2()
        job_cgroup = cgroups.job_cgroup_parent(ctx.pid, self.settings.job_cgroup_prefix,
                                               cgroup_v2=v2, driver=self._cgroup_driver)
        parent = cgroups.container_cgroup_parent(name, job_cgroup, self._cgroup_driver)
        if parent:
            log.info("job=%s container=%s cgroup parent %s%s", ctx.job, name, parent,
                     " (under the launcher's job cgroup)" if job_cgroup else "")
        elif v2 and self.settings.job_cgroup_prefix:
            job_slice = cgroups.htcondor_job_slice(ctx.pid, self.settings.job_cgroup_prefix)
            if job_slice:
                log.info("job=%s container=%s stays in the engine's own cgroup: the %s cgroup driver cannot "
                         "create it under HTCondor's %s, so HTCondor's usage figures are the launcher's "
                         "(the exact ones are the ChirpCondorDocker* attributes)",
                         ctx.job, name, self._cgroup_driver or "engine's", job_slice)
        return parent

    def _disk_limits(self, request: JobRequest) -> dict:
        return {"disk_limit_kb": request.disk_kb, "disk_check_period": self.settings.disk_check_period}

    def _grace(self, request: JobRequest) -> float:
        return request.kill_grace if request.kill_grace is not None else self.settings.kill_grace

    def _created(self, ctx: RequestContext, job: TrackedJob, container_id: str,
                 scratch: ScratchDir | None = None) -> None:
        """After create, before start: the scratch dir the engine will mount must be the one we hold."""
        job.container_id = container_id
        if scratch is not None and not scratch.still_in_place():
            raise policy.refuse(f"scratch dir {scratch.path} changed between the checks and the start "
                                f"of {job.name}: refused")
        ctx.send_event(ops.Started(job.name).to_message())

    def _services(self, ctx: RequestContext, spec: ContainerSpec, container_id: str) -> None:
        """container_service_names: tell the launcher each service's host port (it sets <name>_HostPort).

        With host networking a service listens on its own port; on a bridge, on the port the
        engine published.  A port the engine did not publish is left out (and logged): the
        job runs on, as HTCondor's docker universe does.
        """
        if not spec.services:
            return
        try:
            published = {} if spec.network_mode == "host" else self.engine.host_ports(container_id)
        except Failure as failure:
            log.warning("job=%s container=%s cannot read its published ports: %s", ctx.job, spec.name, failure.reason)
            return
        ports = {}
        for name, port in spec.services:
            host_port = port if spec.network_mode == "host" else published.get(port)
            if host_port is None:
                log.warning("job=%s container=%s service %s: container port %d was not published",
                            ctx.job, spec.name, name, port)
                continue
            ports[name] = host_port
        log.info("job=%s container=%s services %s", ctx.job, spec.name,
                 " ".join(f"{name}={spec.publish_address if spec.network_mode != 'host' else 'host'}:{port}"
                          for name, port in ports.items()))
        ctx.send_event(ops.Services(ports).to_message())

    def _serve(self, ctx: RequestContext, job: TrackedJob, run: ContainerRun, request: JobRequest,
               pull_policy: str | None, adopting: ContainerState | None = None) -> dict:
        """Run (or adopt: `adopting` is the earlier agent's container) the container while watching
        the launcher; the final answer."""
        job.run = run

        def launcher_gone() -> None:
            log.warning("launcher pid %d of %s went away: killing the container", ctx.pid, job.name)
            run.stop(signals.SIGKILL, 0)

        def launcher_suspended() -> None:
            log.info("launcher pid %d of %s is stopped or frozen (suspend): pausing the container", ctx.pid, job.name)
            run.suspend()

        def launcher_continued() -> None:
            log.info("launcher pid %d of %s runs again (continue): unpausing the container", ctx.pid, job.name)
            run.resume()

        watch = launcher_watch.LauncherWatch(ctx.connection.sock, launcher_gone, pid=ctx.pid,
                                       on_suspend=launcher_suspended, on_continue=launcher_continued).start()
        try:
            with self.cache.use(run.spec.image):
                if pull_policy is not None:
                    self.cache.ensure(run.spec.image, pull_policy)
                result = run.run() if adopting is None else run.adopt(adopting.id, adopting.running)
        except Failure as failure:
            raise bounded(failure, request, self.settings) from None
        finally:
            watch.stop()
        ctx.extra["exit"] = result.describe().replace(" ", "_") + ("_oom" if result.oom else "")
        return ops.LaunchReply(result_dict(result)).to_message()

    def _tracked(self, ctx: RequestContext, name: str) -> TrackedJob | None:
        with self._lock:
            job = self._jobs.get(name)
        if job is not None and not (ctx.uid == 0 or ctx.uid == job.uid):
            ctx.container = name
            raise policy.refuse(f"container {name} does not belong to uid {ctx.uid}")
        if job is not None:   # the same rule as for a container found on the engine (_owned_container)
            ctx.container = name
            labels = {STARTER_PID_LABEL: str(job.starter_pid)} if job.starter_pid is not None else {}
            policy.check_same_job(ctx.pid, ctx.uid, name, labels, require_starter=self.settings.require_starter)
            policy.check_peer_still_there(ctx)
        return job

    def signal(self, ctx: RequestContext, asked: ops.Signal) -> dict:
        name, signum, grace = asked.container, asked.signal, asked.grace   # grace within 0..ops.MAX_GRACE
        ctx.extra["signal"] = signum
        job = self._tracked(ctx, name)
        if job is not None and job.run is not None:  # also before the container exists
            ctx.container, ctx.job = name, job.job_id
            job.run.stop(signum, grace)
        else:
            self.engine.kill(self._owned_container(ctx, name).id, signum)
        return dict(ops.OK)

    def _pause(self, ctx: RequestContext, name: str, pause: bool) -> dict:
        job = self._tracked(ctx, name)
        if job is not None and job.run is not None:
            ctx.container, ctx.job = name, job.job_id
            job.run.suspend() if pause else job.run.resume()
        elif pause:
            self.engine.pause(self._owned_container(ctx, name).id)
        else:
            self.engine.unpause(self._owned_container(ctx, name).id)
        return dict(ops.OK)

    def suspend(self, ctx: RequestContext, asked: ops.Suspend) -> dict:
        return self._pause(ctx, asked.container, True)

    def resume(self, ctx: RequestContext, asked: ops.Resume) -> dict:
        return self._pause(ctx, asked.container, False)

    def cleanup(self, ctx: RequestContext, asked: ops.Cleanup) -> dict:
        """JOB_EXIT: remove the job's containers, if they are the peer's."""
        cluster, proc = asked.cluster, asked.proc
        ctx.job = f"{cluster}.{proc}"
        pairs = [(CLUSTER_LABEL, cluster), (PROC_LABEL, proc)]
        if asked.slot:
            pairs.append((SLOT_LABEL, asked.slot))
        found = self.engine.managed_containers(own_containers_filter(self.settings.agent_id, *pairs))
        owned = [c for c in found if policy.may_act_on(ctx.uid, c.get("Labels") or {})]
        mine = [c for c in owned if self._same_job(ctx, c)]
        if found and not owned:
            raise policy.refuse(f"the containers of job {ctx.job} do not belong to uid {ctx.uid}")
        if owned and not mine:
            raise policy.refuse(f"process {ctx.pid} is not a job of the condor_starter that runs job {ctx.job}")
        # A JOB_EXIT hook run by a starter removes only that starter's containers: job ids are
        # not unique across schedds, and another job of the same user may carry the same id.
        proof = starter_proof.find_starter(ctx.pid, None, policy.trusted_owners())
        if proof is not None:
            mine = [c for c in mine if (c.get("Labels") or {}).get(STARTER_PID_LABEL) == str(proof.starter_pid)]
        return ops.CleanupReply(self._remove(ctx, mine)).to_message()

    def cleanup_starter_job(self, ctx: RequestContext, asked: ops.CleanupStarterJob) -> dict:
        """JOB_EXIT by the kernel's word: remove the containers of the peer's own condor_starter.

        The starter runs the hook (as the job's user), so the nearest trusted
        condor_starter among the peer's ancestors is the job's; only containers
        labelled with that starter's pid and the peer's uid are removed.  Nothing
        the job writes (its ads, its environment, the message: it has no fields)
        chooses them, so it cannot name another user's or another starter's
        container.  No such ancestor is the named refusal NO_STARTER: the hook
        then asks with `cleanup` and the job id from its ad.
        """
        proof = starter_proof.find_starter(ctx.pid, None, policy.trusted_owners())
        policy.check_peer_still_there(ctx)   # the ancestors read were the peer's, not a new process's
        if proof is None:
            return ops.failure_reply(policy.refuse(
                f"process {ctx.pid} has no condor_starter among its ancestors: ask with cleanup").to_dict(),
                error=ops.NO_STARTER)
        starter = str(proof.starter_pid)
        ctx.extra["starter"] = starter
        pairs = [(STARTER_PID_LABEL, starter)] + ([] if ctx.uid == 0 else [(UID_LABEL, ctx.uid)])
        found = self.engine.managed_containers(own_containers_filter(self.settings.agent_id, *pairs))
        # the engine's filter chose them; their labels decide, as for every op on a container
        mine = [c for c in found if policy.may_act_on(ctx.uid, c.get("Labels") or {})
                and (c.get("Labels") or {}).get(STARTER_PID_LABEL) == starter]
        if mine:
            labels = mine[0].get("Labels") or {}
            ctx.job = f"{labels.get(CLUSTER_LABEL, '?')}.{labels.get(PROC_LABEL, '?')}"
        return ops.CleanupReply(self._remove(ctx, mine)).to_message()

    def _remove(self, ctx: RequestContext, containers: list[dict]) -> list[str]:
        """Remove these (already authorized) containers; the names of those removed, for the reply and log."""
        removed = []
        for container in containers:
            name = str((container.get("Names") or [""])[0]).lstrip("/")
            if self.engine.remove(container["Id"]):
                removed.append(name)
        ctx.container = ",".join(removed) or "-"
        return removed

    def _same_job(self, ctx: RequestContext, container: dict) -> bool:
        try:
            policy.check_same_job(ctx.pid, ctx.uid, "?", container.get("Labels") or {},
                                  require_starter=self.settings.require_starter)
            return True
        except Failure:
            return False

    def status(self, ctx: RequestContext, asked: ops.Status) -> dict:
        with self._lock:
            jobs = [job.describe() for job in self._jobs.values() if ctx.uid in (0, job.uid)]
        return ops.StatusReply(jobs).to_message()


def _start_label(pid: int) -> tuple[tuple[str, str], ...]:
    """The launcher's start time as a label, so the reaper never takes a recycled pid for it."""
    start = procs.start_ticks(pid)
    return () if start is None else ((LAUNCHER_START_LABEL, str(start)),)
