"""Job status: a pure fold of a job's events into one frozen ``JobStatus``.

One small function per event type, chosen from a dispatch table. No clock, randomness or
environment: times come from the events' ``occurred_at``, so the same events give the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from events import InvalidEventError, RecordedEvent, UnknownEventTypeError
from events.codec import decode
from events.ids import job_id_of
from events.vocabulary import (
    JobCancelled,
    JobCancelRequested,
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobProgress,
    JobRequested,
    JobStarted,
)
from projections.errors import PoisonEventError

STATUSES = ("requested", "running", "completed", "failed", "cancelled", "interrupted")
PHASES = (
    "queued",
    "planning",
    "exporting",
    "downloading_files",
    "writing_manifest",
    "done",
    "failed",
    "cancelled",
)
# Once a job completed or was cancelled, late events from a zombie worker change nothing but flags.
FINAL_STATUSES = ("completed", "cancelled")


@dataclass(frozen=True)
class JobError:
    """Why the last attempt failed."""

    code: str
    message: str
    retryable: bool

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


@dataclass(frozen=True)
class JobStatus:
    """Everything the status tool shows about one job. ``first_position`` orders jobs newest first."""

    job_id: str
    status: str = "requested"
    phase: str = "queued"
    backup_type: str | None = None
    org_id: str | None = None
    instance_url: str | None = None
    objects_done: int = 0
    objects_total: int = 0
    records: int = 0
    files: int = 0
    files_total: int | None = None  # file bodies to fetch, known from the downloading phase on
    bytes: int = 0
    percent: int = 0
    current_object: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: JobError | None = None
    backup_directory: str | None = None
    attempt: int = 0
    skipped: int = 0
    cleaned: bool = False
    cleaned_at: str | None = None
    cancel_requested: bool = False
    first_position: int = 0
    last_position: int = 0
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``error`` as a dict or None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        """Inverse of ``to_dict``."""
        error = data.get("error")
        return cls(**{**data, "error": None if error is None else JobError(**error)})


def _on_requested(state: JobStatus, payload: JobRequested, event: RecordedEvent) -> JobStatus:
    return replace(
        state,
        backup_type=payload.backup_type,
        org_id=payload.org_id or state.org_id,
        instance_url=payload.instance_url or state.instance_url,
        backup_directory=payload.backup_directory or state.backup_directory,
        requested_at=event.occurred_at,
    )


def _on_started(state: JobStatus, payload: JobStarted, event: RecordedEvent) -> JobStatus:
    if state.status in FINAL_STATUSES:
        return state
    return replace(
        state,
        status="running",
        phase="planning",
        attempt=payload.attempt,
        org_id=payload.org_id or state.org_id,
        instance_url=payload.instance_url or state.instance_url,
        objects_total=payload.objects_total or len(payload.objects) or state.objects_total,
        skipped=len(payload.skipped),
        started_at=state.started_at or event.occurred_at,
        finished_at=None,
        error=None,
    )


def _on_progress(state: JobStatus, payload: JobProgress, event: RecordedEvent) -> JobStatus:
    if state.status not in ("requested", "running"):
        return state
    finished = payload.object_finished
    refused = finished is not None and finished.status == "skipped"  # Salesforce refused it at query time
    return replace(
        state,
        skipped=state.skipped + 1 if refused else state.skipped,
        status="running",
        phase=payload.phase,
        objects_done=payload.objects_done,
        objects_total=payload.objects_total or state.objects_total,
        current_object=payload.current_object,
        records=payload.records,
        files=payload.files,
        files_total=state.files_total if payload.files_total is None else payload.files_total,
        bytes=payload.bytes,
        percent=max(state.percent, min(100, max(0, payload.percent))),
    )


def _on_failed(state: JobStatus, payload: JobFailed, event: RecordedEvent) -> JobStatus:
    if state.status in FINAL_STATUSES:
        return state
    return replace(
        state,
        status="failed",
        phase="failed",
        attempt=payload.attempt,
        error=JobError(code=payload.error_code, message=payload.message, retryable=payload.retryable),
        finished_at=event.occurred_at,
    )


def _on_completed(state: JobStatus, payload: JobCompleted, event: RecordedEvent) -> JobStatus:
    if state.status in FINAL_STATUSES:
        return state
    return replace(
        state,
        status="completed",
        phase="done",
        percent=100,
        backup_directory=payload.backup_directory,
        objects_done=payload.objects,
        objects_total=max(state.objects_total, payload.objects),
        records=payload.records,
        files=payload.files,
        bytes=payload.bytes,
        skipped=payload.skipped,
        current_object=None,
        error=None,
        finished_at=event.occurred_at,
    )


def _on_cleaned(state: JobStatus, payload: JobCleaned, event: RecordedEvent) -> JobStatus:
    return replace(state, cleaned=True, cleaned_at=event.occurred_at)


def _on_cancel_requested(state: JobStatus, payload: JobCancelRequested, event: RecordedEvent) -> JobStatus:
    return replace(state, cancel_requested=True)


def _on_cancelled(state: JobStatus, payload: JobCancelled, event: RecordedEvent) -> JobStatus:
    if state.status in FINAL_STATUSES:
        return state
    return replace(state, status="cancelled", phase="cancelled", finished_at=event.occurred_at)


def _on_interrupted(state: JobStatus, payload: JobInterrupted, event: RecordedEvent) -> JobStatus:
    # The phase stays where the worker stopped: that is where a resume picks up.
    if state.status in FINAL_STATUSES:
        return state
    return replace(state, status="interrupted", attempt=payload.attempt, finished_at=event.occurred_at)


_HANDLERS: dict[type, Callable[[JobStatus, Any, RecordedEvent], JobStatus]] = {
    JobRequested: _on_requested,
    JobStarted: _on_started,
    JobProgress: _on_progress,
    JobFailed: _on_failed,
    JobCompleted: _on_completed,
    JobCleaned: _on_cleaned,
    JobCancelRequested: _on_cancel_requested,
    JobCancelled: _on_cancelled,
    JobInterrupted: _on_interrupted,
}


def apply(state: JobStatus | None, event: RecordedEvent) -> JobStatus:
    """Return the status after one event of the job's stream.

    Raises:
        PoisonEventError: the event is not a job event or its payload cannot be decoded.
    """
    job_id = job_id_of(event.stream_id)
    if job_id is None:
        raise PoisonEventError(event.position, f"stream {event.stream_id!r} is not a job stream")
    try:
        payload = decode(event)
    except (InvalidEventError, UnknownEventTypeError) as e:
        raise PoisonEventError(event.position, str(e)) from e
    current = state if state is not None else JobStatus(job_id=job_id, first_position=event.position)
    changed = _HANDLERS[type(payload)](current, payload, event)
    return replace(changed, last_position=event.position, version=event.stream_version)


def project_jobs(events: Iterable[RecordedEvent]) -> dict[str, JobStatus]:
    """Fold events (in position order) into the status of every job; other streams are ignored."""
    jobs: dict[str, JobStatus] = {}
    for event in events:
        job_id = job_id_of(event.stream_id)
        if job_id is not None:
            jobs[job_id] = apply(jobs.get(job_id), event)
    return jobs
