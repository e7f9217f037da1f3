"""The incremental window: which changes a backup holds, and where the next one starts.

A window is (start, end]: rows whose SystemModstamp (else LastModifiedDate) is after ``start``;
``end`` is when the export began. Rows changed while the backup ran may be in it too, so nothing
is lost between two backups when the next one starts at this one's end. It starts a little
earlier still (``OVERLAP``): Salesforce stamps SystemModstamp when a transaction starts, so a
long transaction can commit rows stamped before the end of a backup that did not see them yet.
Re-exporting a few rows twice is harmless; missing one is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

OVERLAP = timedelta(minutes=5)
# Salesforce's Get Deleted ignores seconds and wants more than a minute between start and end.
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    since: str | None  # SOQL datetime literal (exclusive); None: every row
    source: str  # since_date | last_backup | none
    base_backup: dict[str, Any] | None = None
    overlap_seconds: int | None = None


def parse_instant(text: str) -> datetime:
    """Salesforce (``...000+0000``) and ISO (``...Z``) datetimes, as UTC."""
    cleaned = text.strip().replace("Z", "+00:00")
    if len(cleaned) >= 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    moment = datetime.fromisoformat(cleaned)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def soql_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_end(started_at: str | None, manifest: Mapping[str, Any] | None) -> str | None:
    """Where an earlier backup's window ended: its manifest says, else its job's start."""
    recorded = (manifest or {}).get("window")
    if isinstance(recorded, Mapping) and isinstance(recorded.get("end"), str):
        return str(recorded["end"])
    return started_at


def uncovered(
    manifest: Mapping[str, Any] | None,
    *,
    objects_filter: Sequence[str],
    include: Mapping[str, bool],
    content_versions: str,
) -> str | None:
    """Why an earlier backup cannot be the base of this incremental one, or None when it can.

    A base must have looked at every row this backup asks about: changes before its end are not
    exported again. So no files_only backup, no narrower objects_filter, no file kind left out
    that this one includes, and not "latest versions only" when this one wants them all.
    """
    if manifest is None:
        return "its manifest cannot be read, so what it covered is unknown"
    kind = manifest.get("backup_type")
    if kind not in ("full", "incremental"):
        return f"it was a {kind} backup"
    options = manifest.get("options")
    options = options if isinstance(options, Mapping) else {}
    base_filter = set(options.get("objects_filter") or ())
    if base_filter and not (objects_filter and set(objects_filter) <= base_filter):
        return f"it backed up only {', '.join(sorted(base_filter))}"
    for key, wanted in include.items():
        if wanted and options.get(key) is False:
            return f"it had {key}=false"
    if content_versions == "all" and options.get("content_versions") == "latest":
        return "it kept only the latest file versions"
    return None


def choose_window(
    backup_type: str,
    since_date: str | None,
    *,
    base: Mapping[str, Any] | None = None,
    base_window_end: str | None = None,
) -> Window:
    """The window of a backup: ``since_date`` if given, else the last backup's end minus ``OVERLAP``.

    A full backup has none; files_only has one only with ``since_date``; an incremental backup
    without an earlier backup of the org is a full export.
    """
    if backup_type == "full" or (backup_type == "files_only" and not since_date):
        return Window(None, "none")
    if since_date:
        return Window(since_date, "since_date")
    if base is None or not base_window_end:
        return Window(None, "none")
    start = parse_instant(base_window_end) - OVERLAP
    return Window(soql_datetime(start), "last_backup", dict(base), int(OVERLAP.total_seconds()))


def manifest_section(window: Window, *, backup_type: str, end: str) -> dict[str, Any]:
    """``manifest.json`` "window": what this backup covers and where the next one starts."""
    if window.source == "none" and backup_type == "incremental" and window.base_backup:
        source = (
            "none: no earlier completed backup covered what this one asks for (see base_backup), "
            "so every row was exported"
        )
    elif window.source == "none" and backup_type == "incremental":
        source = "none: no earlier completed backup of this org, so every row was exported"
    elif window.source == "none":
        source = "none: every row was exported"
    else:
        source = window.source
    return {
        "field": "SystemModstamp, else LastModifiedDate (objects with neither are exported in full)",
        "start": window.since,
        "start_exclusive": True,
        "end": end,
        "source": source,
        "overlap_seconds": window.overlap_seconds,
        "base_backup": window.base_backup,
        "next_incremental_start": soql_datetime(parse_instant(end) - OVERLAP),
        "note": "rows changed after end, while the backup ran, may be included too; the next incremental "
        f"backup starts {int(OVERLAP.total_seconds())} s before end (SystemModstamp is set when a transaction "
        "starts, so a late commit can carry an earlier stamp)",
    }


def deleted_range(since: str, end: str) -> tuple[str, str]:
    """(start, end) for Get Deleted covering the window: whole minutes, at least two apart.

    Salesforce ignores seconds and covers start <= t < end, so ``end`` is rounded up to the next
    minute; a range that would be too short is widened backwards (more rows, never fewer).
    """
    low = parse_instant(since).replace(second=0, microsecond=0)
    high = parse_instant(end).replace(second=0, microsecond=0) + _MINUTE
    low = min(low, high - 2 * _MINUTE)
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    return low.strftime(fmt), high.strftime(fmt)
