"""Rich tables for the human CLI: jobs (``sfbackup status``) and finished backups (``sfbackup list``).

They take the same dicts that ``--json`` prints, so the two outputs cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from plugin.jobs.state import folder_text

STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "requested": "cyan",
    "failed": "red",
    "interrupted": "red",
    "cancelled": "yellow",
}


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB': sizes people read at a glance (the JSON keeps exact bytes)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _when(stamp: str | None) -> str:
    """ISO time to 'YYYY-MM-DD HH:MM:SS' (UTC, as recorded)."""
    return stamp[:19].replace("T", " ") if stamp else ""


def _status(job: dict[str, Any]) -> str:
    """The status word, plus what a reader must know at a glance: a pending cancel, a lost worker."""
    status = str(job["status"])
    text = status
    if status == "interrupted":
        text = f"interrupted (attempt {job.get('attempt', 1)})"
    elif status in ("requested", "running") and job.get("cancel_requested"):
        text = f"{status}, cancelling"
    return f"[{STATUS_STYLE.get(status, 'white')}]{text}[/]"


def jobs_table(jobs: Sequence[dict[str, Any]], *, total: int, offset: int) -> Table:
    shown = f"{offset + 1}-{offset + len(jobs)} of {total}" if jobs else f"0 of {total}"
    table = Table(title=f"Backup jobs, newest first ({shown})", title_justify="left")
    table.add_column("Job", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("%", justify="right")
    table.add_column("Type")
    table.add_column("Objects", justify="right")
    table.add_column("Records", justify="right")
    table.add_column("Files", justify="right")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Requested (UTC)", no_wrap=True)
    for job in jobs:
        table.add_row(
            job["job_id"],
            _status(job),
            str(job.get("percent", 0)),
            job.get("backup_type") or "",
            f"{job.get('objects_done', 0)}/{job.get('objects_total', 0)}",
            str(job.get("records", 0)),
            str(job.get("files", 0)),
            human_bytes(int(job.get("bytes", 0))),
            _when(job.get("requested_at")),
        )
    return table


def job_table(job: dict[str, Any]) -> Table:
    """One job in full, one field per row."""
    table = Table(title=f"Backup job {job['job_id']}", title_justify="left", show_header=False)
    table.add_column("Field", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")
    error = job.get("error") or {}
    rows: list[tuple[str, str]] = [
        ("Status", _status(job)),
        ("Phase", str(job.get("phase") or "")),
        (
            "Progress",
            f"{job.get('percent', 0)}%" + (f" ({job['current_object']})" if job.get("current_object") else ""),
        ),
        ("Type", str(job.get("backup_type") or "")),
        ("Org", f"{job.get('org_id') or ''} {job.get('instance_url') or ''}".strip()),
        ("Objects", f"{job.get('objects_done', 0)}/{job.get('objects_total', 0)} (skipped {job.get('skipped', 0)})"),
        ("Records", str(job.get("records", 0))),
        ("Files", f"{job.get('files', 0)} ({human_bytes(int(job.get('bytes', 0)))}, {job.get('bytes', 0)} bytes)"),
        ("Requested", _when(job.get("requested_at"))),
        ("Started", _when(job.get("started_at"))),
        ("Finished", _when(job.get("finished_at"))),
        ("Folder", _folder(job)),
    ]
    if error:
        retry = " (retryable: start the backup again)" if error.get("retryable") else ""
        rows.append(("Error", f"[red]{error.get('code')}[/]: {error.get('message')}{retry}"))
    rows.append(("Attempt", str(job.get("attempt", 0))))
    if job.get("status") == "interrupted":
        rows.append(
            ("Next", f"its worker was lost: `sfbackup resume {job['job_id']}` goes on, `sfbackup cancel` drops it")
        )
    elif job.get("cancel_requested") and job.get("status") in ("requested", "running"):
        rows.append(("Next", "cancel requested: the worker stops at its next safe point"))
    if job.get("cleaned"):
        rows.append(("Cleaned", _when(job.get("cleaned_at"))))
    for field, value in rows:
        table.add_row(field, value)
    return table


def backups_table(backups: Sequence[dict[str, Any]], *, total: int, offset: int) -> Table:
    shown = f"{offset + 1}-{offset + len(backups)} of {total}" if backups else f"0 of {total}"
    table = Table(title=f"Finished backups, newest first ({shown})", title_justify="left")
    table.add_column("Finished (UTC)", no_wrap=True)
    table.add_column("Org", no_wrap=True)
    table.add_column("Type")
    table.add_column("Objects", justify="right")
    table.add_column("Records", justify="right")
    table.add_column("Files", justify="right")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Job", no_wrap=True)
    table.add_column("Folder", overflow="fold")
    for entry in backups:
        table.add_row(
            _when(entry.get("finished_at")),
            entry.get("org_id") or "",
            entry.get("backup_type") or "",
            str(entry.get("objects", 0)),
            str(entry.get("records", 0)),
            str(entry.get("files", 0)),
            human_bytes(int(entry.get("bytes", 0))),
            entry["job_id"],
            entry.get("backup_directory") or "",
        )
    return table


def _folder(job: dict[str, Any]) -> str:
    if not job.get("backup_directory"):
        return ""
    return folder_text(str(job["backup_directory"]), status=str(job.get("status")), cleaned=bool(job.get("cleaned")))
