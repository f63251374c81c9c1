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
    native: tuple[int, int | None]           # None: any subcode
    ours: tuple[tuple[int, int], ...]
    release_equivalent: str                  # a periodic_release clause matching ours

    def matches(self, native: tuple[int, int], ours: tuple[int, int]) -> bool:
        code, sub = self.native
        return native[0] == code and (sub is None or native[1] == sub) and ours in self.ours


HOLD_TABLE: tuple[HoldMapping, ...] = (
    HoldMapping("the image cannot be pulled (no such image or tag, refused, bad reference)",
                (35, 0), ((19, 11), (19, 12), (19, 13), (19, 14), (19, 20), (19, 21)),
                "HoldReasonCode == 19 && HoldReasonSubCode >= 11 && HoldReasonSubCode <= 14"),
    HoldMapping("the job went over its memory limit (OOM)",
                (34, 102), ((3, 102),),
                "HoldReasonCode == 3 && HoldReasonSubCode == 102"),
    HoldMapping("the container could not be created or started (engine refused its configuration)",
                (6, None), ((19, 15), (19, 17), (19, 18)),
                "HoldReasonCode == 19 && HoldReasonSubCode >= 15 && HoldReasonSubCode <= 18"),
    HoldMapping("the job's own policy (on_exit_hold, periodic_hold): the same codes",
                (3, None), (),
                "unchanged (the schedd and shadow set them, not the docker universe)"),
    HoldMapping("condor_hold by a user: the same codes",
                (1, 0), ((1, 0),),
                "unchanged"),
)


def same_hold(native: tuple[int | None, int | None], ours: tuple[int | None, int | None]) -> bool:
    """True when the two holds mean the same to the user (policy holds must be identical)."""
    if native == ours and native[0] in (1, 3):
        return True
    return any(row.matches(native, ours) for row in HOLD_TABLE if row.ours)  # type: ignore[arg-type]


def _native_cell(row: HoldMapping) -> str:
    code, sub = row.native
    return f"{code}/{'any' if sub is None else sub}"


def render_markdown() -> str:
    """The table as it appears in docs/MIGRATION-FROM-NATIVE.md."""
    lines = ["| what the user sees | native code/subcode | condor_docker code/subcode | periodic_release equivalent |",
             "|---|---|---|---|"]
    for row in HOLD_TABLE:
        ours = ", ".join(f"{c}/{s}" for c, s in row.ours) or "the same"
        lines.append(f"| {row.what} | {_native_cell(row)} | {ours} | `{row.release_equivalent}` |")
    return "\n".join(lines) + "\n"
