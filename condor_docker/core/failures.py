"""The failure taxonomy shared by every path (local runner, hooks, launcher, agent).

Every way a docker job can fail ends as one `Failure`:

    Failure(kind, code, reason)
      kind   HOLD     the job cannot succeed as submitted; a person must act
                      (fix the image name, the submit file, the memory request)
             REQUEUE  the fault is on this machine or network and may pass
                      (engine down, registry unreachable, pull timed out);
                      the job goes back to idle and is matched again
      code   a stable number; HOLD codes are 1..299 and REQUEUE codes are >= 300,
             because HTCondor reads a PREPARE_JOB hook's HookStatusCode that way
             (1..299 holds the job with HoldReasonCode 19 and this subcode;
             >= 300 sends it back to idle)
      reason one line for the job's HoldReason; it keeps the engine's own words

Codes (also published in docs/USERS.md and docs/INSTALL-EXECUTE-POINT.md):

    HOLD
      10  BAD_JOB_AD           the job ad is missing or has an invalid attribute
      11  INVALID_IMAGE        DockerImage is not a valid image reference
      12  IMAGE_NOT_FOUND      the registry has no such image or tag
      13  IMAGE_ACCESS_DENIED  the registry refused access to the image
      14  IMAGE_NOT_TRUSTED    a locally loaded image, and local images are not trusted
      15  NETWORK_NOT_ALLOWED  DockerNetworkType names a network this machine refuses
      16  POLICY_REFUSED       the agent's policy refused the request (uid 0, foreign
                               scratch dir, privileges beyond the admin's list, ...)
      17  EXECUTABLE_NOT_FOUND the command does not exist in the image
      18  CONTAINER_REFUSED    the engine refused the container's configuration
      19  TOO_MANY_REQUEUES    a transient fault repeated too often; the last one is
                               in the reason
      20  IMAGE_TOO_LARGE      the image is over the admin's per-pull size cap
                               (CONDOR_DOCKER_MAX_IMAGE_SIZE_MB)
      21  REGISTRY_NOT_ALLOWED the image's registry is not in the admin's list
                               (CONDOR_DOCKER_ALLOWED_REGISTRIES)
      22  WRONG_ARCHITECTURE   the image is built for another CPU architecture
                               (DOCKER_SKIP_IMAGE_ARCH_CHECK turns the check off)
      102 OVER_MEMORY          the job went over its memory limit (the same subcode
                               HTCondor's own docker universe uses)
      103 OVER_DISK            the job's scratch dir plus its container's writable
                               layer went over the slot's Disk (request_disk)
    REQUEUE
      301 ENGINE_UNAVAILABLE   the Docker engine does not answer
      302 REGISTRY_UNREACHABLE the registry could not be reached
      303 PULL_TIMEOUT         the pull took too long or stalled
      304 AGENT_UNAVAILABLE    the condor_docker agent does not answer
      305 ENGINE_ERROR         the engine failed with a server-side error
      306 JOB_INTERRUPTED      the job was stopped before it finished (vacate,
                               agent or launcher lost)

HTCondor's own HoldReasonCode values (its CONDOR_HOLD_CODE), which the codes
above go under as HoldReasonSubCode, are `HoldReasonCode` below.
"""
from __future__ import annotations

import enum

# A reason on the wire (and so in a hold reason) is at most this long: a job's
# 3.9 MB image name quoted in a refusal made a reply longer than a protocol line.
MAX_REASON = 4096


class Kind(enum.Enum):
    HOLD = "hold"
    REQUEUE = "requeue"


class Code(enum.IntEnum):
    BAD_JOB_AD = 10
    INVALID_IMAGE = 11
    IMAGE_NOT_FOUND = 12
    IMAGE_ACCESS_DENIED = 13
    IMAGE_NOT_TRUSTED = 14
    NETWORK_NOT_ALLOWED = 15
    POLICY_REFUSED = 16
    EXECUTABLE_NOT_FOUND = 17
    CONTAINER_REFUSED = 18
    TOO_MANY_REQUEUES = 19
    IMAGE_TOO_LARGE = 20
    REGISTRY_NOT_ALLOWED = 21
    WRONG_ARCHITECTURE = 22
    OVER_MEMORY = 102
    OVER_DISK = 103
    ENGINE_UNAVAILABLE = 301
    REGISTRY_UNREACHABLE = 302
    PULL_TIMEOUT = 303
    AGENT_UNAVAILABLE = 304
    ENGINE_ERROR = 305
    JOB_INTERRUPTED = 306
    SLOT_UNKNOWN = 307        # no startd answered and this slot's size was never known: try again

    @property
    def kind(self) -> Kind:
        """The kind follows from the number, as HTCondor reads HookStatusCode."""
        return Kind.HOLD if self.value < 300 else Kind.REQUEUE


class HoldReasonCode(enum.IntEnum):
    """HTCondor's HoldReasonCode values (CONDOR_HOLD_CODE) that condor_docker sets or mimics."""
    JOB_POLICY = 3                 # on_exit_hold / periodic_hold (JobPolicy)
    JOB_POLICY_UNDEFINED = 5       # a policy expression that does not evaluate (JobPolicyUndefined)
    HOOK_PREPARE_JOB_FAILURE = 19  # the PREPARE_JOB hook failed (HookPrepareJobFailure)


class Failure(Exception):
    """A classified failure: what happened (`reason`) and what HTCondor should do."""

    def __init__(self, code: Code, reason: str) -> None:
        reason = " ".join(str(reason).split())  # one line, whatever the engine said
        super().__init__(reason)
        self.code = Code(code)
        self.reason = reason

    @property
    def kind(self) -> Kind:
        return self.code.kind

    @property
    def is_hold(self) -> bool:
        return self.kind is Kind.HOLD

    def with_context(self, context: str) -> "Failure":
        """Prefix the reason with context, keeping the classification."""
        return Failure(self.code, f"{context}: {self.reason}")

    def to_dict(self) -> dict:
        """The wire form; the reason cut to MAX_REASON (it may quote a job's value, and a reply is one line)."""
        reason = self.reason
        if len(reason) > MAX_REASON:
            reason = f"{reason[:MAX_REASON]}... (cut: {len(reason)} characters)"
        return {"code": int(self.code), "reason": reason}

    @classmethod
    def from_dict(cls, data: dict) -> "Failure":
        return cls(Code(int(data["code"])), str(data["reason"]))

    def __repr__(self) -> str:
        return f"Failure({self.code.name}, {self.reason!r})"


def bound_requeue(failure: Failure, starts: int, limit: int) -> Failure:
    """The one requeue -> hold rule: a transient failure of a job started more than `limit` times is a hold.

    HTCondor requeues on >= 300 with no limit and no back-off, so a REQUEUE
    failure would loop forever; once `starts` (how often the job has been
    started, this attempt included; each caller has its own count) is above
    `limit` it becomes TOO_MANY_REQUEUES with the last reason kept.  A HOLD
    failure, or a job still within its limit, is returned as it is.
    """
    if failure.is_hold or starts <= limit:
        return failure
    return Failure(Code.TOO_MANY_REQUEUES,
                   f"gave up after {starts} attempts (limit {limit}); last error: {failure.reason}")
