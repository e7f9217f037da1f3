"""Audit of a home's event log: file integrity, guard triggers, hash chain, and the anchors that
backup manifests recorded, each failure with what to do. ``sfbackup verify`` renders it.

The log is opened read-only, so a file whose triggers were removed (which normal opening refuses)
can still be audited, and the audit never changes what it inspects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from events import EventLog, EventLogError
from events.anchors import Anchor, AnchorCheck, check_anchor
from events.chain import GENESIS_HASH
from plugin import config
from plugin.homelog import RESTORE
from plugin.salesforce.manifest import MANIFEST_NAME, PARTIAL_SUFFIX

UNUSABLE_MANIFEST = (
    "Every manifest sfbackup writes records the log head, so this one was edited or is not sfbackup's: "
    "compare the folder with your copies of it, and move it out of backups/ if it is not a backup"
)


@dataclass(frozen=True)
class VerifyReport:
    """Everything ``sfbackup verify`` found; ``problems`` are the sentences to show, one per finding."""

    log_path: str
    exists: bool
    checked: int = 0
    head: tuple[int, str] = (0, GENESIS_HASH.hex())
    first_bad_position: int | None = None
    problem: str | None = None
    integrity: tuple[str, ...] = ()
    missing_triggers: tuple[str, ...] = ()
    highest_issued: int = 0
    anchors: tuple[AnchorCheck, ...] = ()  # one per backup manifest
    checkpoints: tuple[AnchorCheck, ...] = ()  # the projections' checkpoints, anchors inside the file
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``--json`` output)."""
        return {
            "ok": self.ok,
            "log": self.log_path,
            "exists": self.exists,
            "checked": self.checked,
            "first_bad_position": self.first_bad_position,
            "problem": self.problem,
            "head": {"position": self.head[0], "hash": self.head[1]},
            "integrity_check": list(self.integrity),
            "missing_triggers": list(self.missing_triggers),
            "highest_issued": self.highest_issued,
            "anchors": [a.to_dict() for a in self.anchors],
            "checkpoints": [c.to_dict() for c in self.checkpoints],
            "problems": list(self.problems),
        }


def manifest_anchors(backups: Path) -> tuple[list[Anchor], list[AnchorCheck]]:
    """The ``event_log_head`` of every ``backups/<org>/<folder>/manifest.json``, and the manifests
    that hold none (or cannot be read), already as failed checks."""
    anchors: list[Anchor] = []
    unusable: list[AnchorCheck] = []
    for path in sorted(backups.glob(f"*/*/{MANIFEST_NAME}")):
        if path.parent.name.endswith(PARTIAL_SUFFIX):
            continue  # the manifest of a backup still being renamed into place
        source = str(path)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            unusable.append(AnchorCheck(source, None, None, False, f"cannot be read as JSON ({e})"))
            continue
        head = manifest.get("event_log_head") if isinstance(manifest, dict) else None
        position = head.get("position") if isinstance(head, dict) else None
        digest = head.get("hash") if isinstance(head, dict) else None
        if (
            isinstance(position, bool)
            or not isinstance(position, int)
            or position < 0
            or not isinstance(digest, str)
            or len(digest) != 64
        ):
            unusable.append(
                AnchorCheck(
                    source,
                    None,
                    None,
                    False,
                    "has no valid event_log_head {position, hash}: it was not written by sfbackup or was edited",
                )
            )
            continue
        anchors.append(Anchor(source, position, digest))
    return anchors, unusable


def verify_home(home: Path) -> VerifyReport:
    """Audit ``<home>/events.db`` against itself and the manifests under ``<home>/backups``."""
    path = config.events_path(home)
    anchors, unusable = manifest_anchors(home / "backups")
    if not path.exists():
        problems: tuple[str, ...] = ()
        if anchors or unusable:
            problems = (
                f"there is no event log at {path}, but {len(anchors) + len(unusable)} backup manifest(s) under "
                f"{home / 'backups'} were written with one: the log was deleted or moved. Point --home "
                "(SFBACKUP_HOME) at the folder that holds it, or restore events.db from a backup copy.",
            )
        return VerifyReport(str(path), False, anchors=tuple(unusable), problems=problems)
    try:
        with EventLog.open(path, readonly=True) as log:
            file = log.check_file()
            chain = log.verify()
            head = log.head()
            checkpoints, checks = (
                tuple(
                    check_anchor(anchor, stored_hash=log.hash_at(anchor.position), head=head[0], chain=chain)
                    for anchor in group
                )
                for group in (file.checkpoints, anchors)
            )
    except EventLogError as e:  # not a database, quick_check fails, no events table, ...
        return VerifyReport(
            str(path), True, anchors=tuple(unusable), problems=(f"cannot audit {path}: {e}. {RESTORE}",)
        )
    findings: list[str] = []
    first_bad = chain.first_bad_position
    if file.integrity != ("ok",):
        reported = "; ".join(file.integrity[:5])
        findings.append(f"PRAGMA integrity_check reports: {reported}. The file is damaged. {RESTORE}")
    if file.missing_triggers:
        findings.append(
            f"guard trigger(s) {', '.join(file.missing_triggers)} are missing, so the database no longer "
            "refuses edits to history (and sfbackup refuses to open it for writing). Someone with access to "
            f"the file removed them. {RESTORE}"
        )
    if not chain.ok:
        findings.append(
            f"the hash chain breaks at position {first_bad}: {chain.problem}. Events were changed or removed "
            f"after they were written. {RESTORE}"
        )
    if file.highest_issued > head[0]:
        first_bad = head[0] + 1 if first_bad is None else min(first_bad, head[0] + 1)
        findings.append(
            f"positions up to {file.highest_issued} were handed out, but the log ends at {head[0]}: the last "
            f"{file.highest_issued - head[0]} event(s) were deleted. {RESTORE}"
        )
    for check in (*checkpoints, *checks):
        if check.ok:
            continue
        findings.append(f"anchor in {check.source} {check.problem}. {RESTORE}")
        if check.position is not None and check.position > head[0]:
            first_bad = head[0] + 1 if first_bad is None else min(first_bad, head[0] + 1)
    findings.extend(f"{check.source} {check.problem}. {UNUSABLE_MANIFEST}" for check in unusable)
    return VerifyReport(
        log_path=str(path),
        exists=True,
        checked=chain.checked,
        head=head,
        first_bad_position=first_bad,
        problem=chain.problem,
        integrity=file.integrity,
        missing_triggers=file.missing_triggers,
        highest_issued=file.highest_issued,
        anchors=(*checks, *unusable),
        checkpoints=checkpoints,
        problems=tuple(findings),
    )
