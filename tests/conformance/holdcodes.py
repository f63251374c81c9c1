"""The one table that maps HTCondor's own docker-universe hold codes to condor_docker's.

HTCondor's own docker universe holds with its own codes (34 JobOutOfResources, 35
InvalidDockerImage, 6 FailedToCreateProcess, ...). condor_docker reports failures
before the job starts through the PREPARE_JOB hook (HoldReasonCode 19, the subcode
says why) and failures after start through the access-point transform (code 3).
The conformance suite compares holds through this table and nothing else, and
docs/MIGRATION-FROM-NATIVE.md shows it (test_hold_table_is_in_the_migration_doc
keeps the two equal), so a site can rewrite a `periodic_release` keyed on native
codes from the `release_equivalent` column.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HoldMapping:
    """Native (code, subcode) and the condor_docker holds that mean the same to the user."""
    what: str
    native: tuple[tuple[int, int | None], ...]   # (code, subcode); subcode None: any
    ours: tuple[tuple[int, int], ...]
    release_equivalent: str                      # a periodic_release clause matching ours

    def matches(self, native: tuple[int, int], ours: tuple[int, int]) -> bool:
        return ours in self.ours and any(native[0] == code and sub in (None, native[1]) for code, sub in self.native)


HOLD_TABLE: tuple[HoldMapping, ...] = (
    HoldMapping("the image cannot be pulled (no such image or tag, refused, bad reference)",
                ((35, 0),), ((19, 11), (19, 12), (19, 13), (19, 14), (19, 20), (19, 21)),
                "HoldReasonCode == 19 && member(HoldReasonSubCode, {11, 12, 13, 14, 20, 21})"),
    HoldMapping("the job went over its memory limit (OOM)",
                ((34, 102),), ((3, 102),),
                "HoldReasonCode == 3 && HoldReasonSubCode == 102"),
    HoldMapping("the container could not be created or started (no command in the image, the engine "
                "refused its configuration)",
                ((35, 0), (6, None)), ((19, 15), (19, 18), (3, 18)),
                "(HoldReasonCode == 19 || HoldReasonCode == 3) && HoldReasonSubCode >= 15 && HoldReasonSubCode <= 18"),
    HoldMapping("the image is built for another CPU architecture than this machine's "
                "(DOCKER_SKIP_IMAGE_ARCH_CHECK off)",
                ((35, 0),), ((19, 22),),
                "HoldReasonCode == 19 && HoldReasonSubCode == 22"),
    HoldMapping("the command is not in the image (or its interpreter is not): native completes with exit 127",
                (), ((3, 17),),
                "HoldReasonCode == 3 && HoldReasonSubCode == 17"),
    HoldMapping("over the disk it asked for (native: only on LVM-managed execute dirs)",
                ((34, 104),), ((3, 103),),
                "HoldReasonCode == 3 && HoldReasonSubCode == 103"),
)

# Everything else HTCondor itself decides (condor_hold 1/0, the job's policy 3/x, file
# transfer 12/x and 13/x, ...) is the same code in both: the docker universe is not involved.
SAME_IN_BOTH = "any other code: condor_hold (1), the job's own policy (3), file transfer (12, 13), ..."


def same_hold(native: tuple[int | None, int | None], ours: tuple[int | None, int | None]) -> bool:
    """True when the two holds mean the same to the user (identical, or a row of HOLD_TABLE)."""
    if native == ours:
        return not any(native[0] == code for row in HOLD_TABLE for code, _ in row.native)
    return any(row.matches(native, ours) for row in HOLD_TABLE)  # type: ignore[arg-type]


def hold_events(events: list[str]) -> list[str]:
    """A hold by the starter writes remote-error and evicted before held, one at exit only held:
    which of the two a failure is differs (ours holds an OOM at exit), the user sees a hold."""
    found = list(events)
    while len(found) >= 3 and found[-3:] == ["remote-error", "evicted", "held"]:
        found[-3:] = ["held"]
    return found


def _native_cell(row: HoldMapping) -> str:
    if not row.native:
        return "no hold"
    return ", ".join(f"{code}/{'any' if sub is None else sub}" for code, sub in row.native)


def render_markdown() -> str:
    """The table as it appears in docs/MIGRATION-FROM-NATIVE.md."""
    lines = ["| what the user sees | native code/subcode | condor_docker code/subcode | periodic_release equivalent |",
             "|---|---|---|---|"]
    for row in HOLD_TABLE:
        ours = ", ".join(f"{c}/{s}" for c, s in row.ours) or "the same"
        lines.append(f"| {row.what} | {_native_cell(row)} | {ours} | `{row.release_equivalent}` |")
    lines.append(f"| {SAME_IN_BOTH} | the same | the same | unchanged |")
    return "\n".join(lines) + "\n"
