"""Backup catalog: one ``BackupEntry`` per completed job, folded from the job's events.

The entry needs facts from earlier events (org, backup type), so the fold receives the job's
status after the same event: ``apply(entry, event, job)``. Still pure: same events, same catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from events import RecordedEvent
from events.codec import decode
from events.ids import job_id_of
from events.vocabulary import JobCleaned, JobCompleted
from projections import job_status
from projections.job_status import JobStatus


@dataclass(frozen=True)
class BackupEntry:
    """A finished backup and its manifest summary. ``position`` (of job.completed) orders newest first."""

    job_id: str
    org_id: str | None
    instance_url: str | None
    backup_type: str | None
    backup_directory: str
    started_at: str | None  # when the worker started: an incremental backup after this one starts here
    finished_at: str
    objects: int
    records: int
    files: int
    bytes: int
    skipped: int
    manifest_sha256: str | None
    cleaned: bool
    position: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupEntry:
        """Inverse of ``to_dict``."""
        return cls(**data)


def apply(entry: BackupEntry | None, event: RecordedEvent, job: JobStatus) -> BackupEntry | None:
    """Return the catalog entry after one event, given the job's status after that same event."""
    if event.type == JobCompleted.TYPE and job.status == "completed" and job.last_position == event.position:
        payload = decode(event)  # job_status.apply decoded it already, so this cannot fail
        assert isinstance(payload, JobCompleted)
        return BackupEntry(
            job_id=job.job_id,
            org_id=job.org_id,
            instance_url=job.instance_url,
            backup_type=job.backup_type,
            backup_directory=job.backup_directory or "",
            started_at=job.started_at,
            finished_at=event.occurred_at,
            objects=payload.objects,
            records=job.records,
            files=job.files,
            bytes=job.bytes,
            skipped=job.skipped,
            manifest_sha256=payload.manifest_sha256,
            cleaned=job.cleaned,
            position=event.position,
        )
    if event.type == JobCleaned.TYPE and entry is not None:
        return replace(entry, cleaned=True)
    return entry


def project(
    events: Iterable[RecordedEvent],
    *,
    jobs: dict[str, JobStatus],
    catalog: dict[str, BackupEntry],
) -> set[str]:
    """Fold events into ``jobs`` and ``catalog`` in place; return the ids of the jobs touched.

    The one fold both the store (dicts loaded from its tables) and replay (empty dicts) use.
    """
    touched: set[str] = set()
    for event in events:
        job_id = job_id_of(event.stream_id)
        if job_id is None:
            continue
        status = job_status.apply(jobs.get(job_id), event)
        jobs[job_id] = status
        entry = apply(catalog.get(job_id), event, status)
        if entry is not None:
            catalog[job_id] = entry
        touched.add(job_id)
    return touched


def project_catalog(events: Iterable[RecordedEvent]) -> dict[str, BackupEntry]:
    """Fold events (in position order) into the catalog of completed backups."""
    catalog: dict[str, BackupEntry] = {}
    project(events, jobs={}, catalog=catalog)
    return catalog
