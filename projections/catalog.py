"""Backup catalog: one ``BackupEntry`` per completed job, folded from the job's events.

The entry needs facts from earlier events (org, backup type), so the fold receives the job's
status after the same event: ``apply(entry, event, job)``. Still pure: same events, same catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

from events import RecordedEvent
from events.codec import decode
from events.ids import job_id_of
from events.vocabulary import EventPayload, JobCleaned, JobCompleted
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
        """JSON-ready dict (every value is immutable: no deep copy as ``dataclasses.asdict`` makes)."""
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupEntry:
        """Inverse of ``to_dict``."""
        return cls(**data)


_ENTRY_FIELDS = tuple(f.name for f in fields(BackupEntry))


def entry_after(
    entry: BackupEntry | None, payload: EventPayload, position: int, occurred_at: str, job: Any
) -> BackupEntry | None:
    """The catalog entry after one event, given the job (status or draft) after that same event."""
    if type(payload) is JobCompleted:
        if job.status == "completed" and job.last_position == position:
            return BackupEntry(
                job_id=job.job_id,
                org_id=job.org_id,
                instance_url=job.instance_url,
                backup_type=job.backup_type,
                backup_directory=job.backup_directory or "",
                started_at=job.started_at,
                finished_at=occurred_at,
                objects=payload.objects,
                records=job.records,
                files=job.files,
                bytes=job.bytes,
                skipped=job.skipped,
                manifest_sha256=payload.manifest_sha256,
                cleaned=job.cleaned,
                position=position,
            )
    elif type(payload) is JobCleaned and entry is not None:
        return replace(entry, cleaned=True)
    return entry


def apply(entry: BackupEntry | None, event: RecordedEvent, job: JobStatus) -> BackupEntry | None:
    """Return the catalog entry after one event, given the job's status after that same event."""
    if event.type not in (JobCompleted.TYPE, JobCleaned.TYPE):
        return entry
    payload = decode(event)  # job_status.apply decoded it already, so this cannot fail
    return entry_after(entry, payload, event.position, event.occurred_at, job)


Decoded = tuple[str, int, int, EventPayload, str]
"""One event ready to fold: job id, position, stream version, typed payload, occurred_at."""


def fold(
    events: Iterable[Decoded],
    *,
    jobs: dict[str, JobStatus],
    catalog: dict[str, BackupEntry],
) -> set[str]:
    """Fold decoded events into ``jobs`` and ``catalog`` in place; return the ids of the jobs touched.

    The one fold behind ``project`` (recorded events) and the store's batches (stored rows).
    """
    drafts: dict[str, job_status.JobDraft] = {}
    handlers = job_status.HANDLERS
    last_job = ""
    for job_id, position, stream_version, payload, occurred_at in events:
        if job_id != last_job:  # events of one job mostly come in runs
            found = drafts.get(job_id)
            if found is None:
                known = jobs.get(job_id)
                start = known if known is not None else JobStatus(job_id=job_id, first_position=position)
                found = drafts[job_id] = job_status.JobDraft(start)
            draft = found
            last_job = job_id
        # job_status.step, written out: this loop runs once per event of a rebuild
        kind = type(payload)
        handlers[kind](draft, payload, occurred_at)
        draft.last_position = position
        draft.version = stream_version
        if kind is JobCompleted or kind is JobCleaned:
            entry = entry_after(catalog.get(job_id), payload, position, occurred_at, draft)
            if entry is not None:
                catalog[job_id] = entry
    for job_id, draft in drafts.items():
        jobs[job_id] = draft.freeze()
    return set(drafts)


def _decoded(events: Iterable[RecordedEvent]) -> Iterator[Decoded]:
    for event in events:
        if job_id_of(event.stream_id) is not None:
            job_id, payload = job_status.decoded(event)
            yield job_id, event.position, event.stream_version, payload, event.occurred_at


def project(
    events: Iterable[RecordedEvent],
    *,
    jobs: dict[str, JobStatus],
    catalog: dict[str, BackupEntry],
) -> set[str]:
    """Fold events into ``jobs`` and ``catalog`` in place; return the ids of the jobs touched.

    The one fold both the store (dicts loaded from its tables) and replay (empty dicts) use.
    """
    return fold(_decoded(events), jobs=jobs, catalog=catalog)


def project_catalog(events: Iterable[RecordedEvent]) -> dict[str, BackupEntry]:
    """Fold events (in position order) into the catalog of completed backups."""
    catalog: dict[str, BackupEntry] = {}
    project(events, jobs={}, catalog=catalog)
    return catalog
