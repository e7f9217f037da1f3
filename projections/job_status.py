"""Job status: a pure fold of a job's events into one frozen ``JobStatus``.

One small function per event type, chosen from a dispatch table. No clock, randomness or
environment: times come from the events' ``occurred_at``, so the same events give the same state.
The handlers change a ``JobDraft`` in place (a rebuild folds hundreds of thousands of events, and
a frozen copy per event would be most of its time); ``apply`` and the folds freeze it after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from events import InvalidEventError, RecordedEvent, UnknownEventTypeError
from events.codec import decode, decode_stored
from events.frozen import build
from events.ids import job_id_of
from events.records import EventRow
from events.vocabulary import (
    EventPayload,
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
        """JSON-ready dict (``error`` as a dict or None).

        Read field by field rather than with ``dataclasses.asdict``, whose deep copy of every value was
        most of the cost of a status answer; every value is immutable except ``error``.
        """
        data = dict(zip(_FIELDS, _values(self), strict=True))
        if self.error is not None:
            data["error"] = self.error.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        """Inverse of ``to_dict``."""
        error = data.get("error")
        return cls(**{**data, "error": None if error is None else JobError(**error)})


_FIELDS = tuple(f.name for f in fields(JobStatus))
# All fields' values at once, in field order (one C call; a status or a draft).
_values = attrgetter(*_FIELDS)


class JobDraft:
    """A job's status while a fold runs: mutable, so an event costs a few attribute writes.

    Folds thaw a ``JobStatus`` into a draft, let the handlers change it event after event and
    freeze it once at the end; the result is the same as building a new ``JobStatus`` per event.
    """

    __slots__ = _FIELDS
    # The same names and types as JobStatus (a test pins them), for the type checker.
    job_id: str
    status: str
    phase: str
    backup_type: str | None
    org_id: str | None
    instance_url: str | None
    objects_done: int
    objects_total: int
    records: int
    files: int
    files_total: int | None
    bytes: int
    percent: int
    current_object: str | None
    requested_at: str | None
    started_at: str | None
    finished_at: str | None
    error: JobError | None
    backup_directory: str | None
    attempt: int
    skipped: int
    cleaned: bool
    cleaned_at: str | None
    cancel_requested: bool
    first_position: int
    last_position: int
    version: int

    def __init__(self, status: JobStatus) -> None:
        for name, value in zip(_FIELDS, _values(status), strict=True):
            setattr(self, name, value)

    def freeze(self) -> JobStatus:
        return build(JobStatus, dict(zip(_FIELDS, _values(self), strict=True)))


def _on_requested(job: JobDraft, payload: JobRequested, occurred_at: str) -> None:
    job.backup_type = payload.backup_type
    job.org_id = payload.org_id or job.org_id
    job.instance_url = payload.instance_url or job.instance_url
    job.backup_directory = payload.backup_directory or job.backup_directory
    job.requested_at = occurred_at


def _on_started(job: JobDraft, payload: JobStarted, occurred_at: str) -> None:
    if job.status in FINAL_STATUSES:
        return
    job.status = "running"
    job.phase = "planning"
    job.attempt = payload.attempt
    job.org_id = payload.org_id or job.org_id
    job.instance_url = payload.instance_url or job.instance_url
    job.objects_total = payload.objects_total or len(payload.objects) or job.objects_total
    job.skipped = len(payload.skipped)
    job.started_at = job.started_at or occurred_at
    job.finished_at = None
    job.error = None


def _on_progress(job: JobDraft, payload: JobProgress, occurred_at: str) -> None:
    if job.status != "requested" and job.status != "running":
        return
    finished = payload.object_finished
    if finished is not None and finished.status == "skipped":  # Salesforce refused it at query time
        job.skipped += 1
    job.status = "running"
    job.phase = payload.phase
    job.objects_done = payload.objects_done
    job.objects_total = payload.objects_total or job.objects_total
    job.current_object = payload.current_object
    job.records = payload.records
    job.files = payload.files
    if payload.files_total is not None:
        job.files_total = payload.files_total
    job.bytes = payload.bytes
    percent = payload.percent
    percent = 0 if percent < 0 else 100 if percent > 100 else percent
    if percent > job.percent:  # never goes back
        job.percent = percent


def _on_failed(job: JobDraft, payload: JobFailed, occurred_at: str) -> None:
    if job.status in FINAL_STATUSES:
        return
    job.status = "failed"
    job.phase = "failed"
    job.attempt = payload.attempt
    job.error = JobError(code=payload.error_code, message=payload.message, retryable=payload.retryable)
    job.finished_at = occurred_at


def _on_completed(job: JobDraft, payload: JobCompleted, occurred_at: str) -> None:
    if job.status in FINAL_STATUSES:
        return
    job.status = "completed"
    job.phase = "done"
    job.percent = 100
    job.backup_directory = payload.backup_directory
    job.objects_done = payload.objects
    job.objects_total = max(job.objects_total, payload.objects)
    job.records = payload.records
    job.files = payload.files
    job.bytes = payload.bytes
    job.skipped = payload.skipped
    job.current_object = None
    job.error = None
    job.finished_at = occurred_at


def _on_cleaned(job: JobDraft, payload: JobCleaned, occurred_at: str) -> None:
    job.cleaned = True
    job.cleaned_at = occurred_at


def _on_cancel_requested(job: JobDraft, payload: JobCancelRequested, occurred_at: str) -> None:
    job.cancel_requested = True


def _on_cancelled(job: JobDraft, payload: JobCancelled, occurred_at: str) -> None:
    if job.status in FINAL_STATUSES:
        return
    job.status = "cancelled"
    job.phase = "cancelled"
    job.finished_at = occurred_at


def _on_interrupted(job: JobDraft, payload: JobInterrupted, occurred_at: str) -> None:
    # The phase stays where the worker stopped: that is where a resume picks up.
    if job.status in FINAL_STATUSES:
        return
    job.status = "interrupted"
    job.attempt = payload.attempt
    job.finished_at = occurred_at


HANDLERS: dict[type, Callable[[JobDraft, Any, str], None]] = {
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


def step(
    job: JobDraft | None, job_id: str, position: int, stream_version: int, payload: EventPayload, occurred_at: str
) -> JobDraft:
    """Apply one decoded event of the job's stream to its draft (a new one for the first event)."""
    if job is None:
        job = JobDraft(JobStatus(job_id=job_id, first_position=position))
    HANDLERS[type(payload)](job, payload, occurred_at)
    job.last_position = position
    job.version = stream_version
    return job


def decoded(event: RecordedEvent) -> tuple[str, EventPayload]:
    """The job id and typed payload of an event of a job's stream.

    Raises:
        PoisonEventError: the event is not a job event or its payload cannot be decoded.
    """
    job_id = job_id_of(event.stream_id)
    if job_id is None:
        raise PoisonEventError(event.position, f"stream {event.stream_id!r} is not a job stream")
    try:
        return job_id, decode(event)
    except (InvalidEventError, UnknownEventTypeError) as e:
        raise PoisonEventError(event.position, str(e)) from e


def decoded_rows(rows: Iterable[EventRow]) -> list[tuple[str, int, int, EventPayload, str]]:
    """``(job_id, position, stream_version, payload, occurred_at)`` per stored row of a job stream.

    Raises:
        PoisonEventError: a payload cannot be decoded.
    """
    decoded: list[tuple[str, int, int, EventPayload, str]] = []
    job_ids: dict[str, str | None] = {}
    last_stream = ""
    job_id: str | None = None
    for position, stream_id, stream_version, event_type, schema_version, data, occurred_at in rows:
        if stream_id != last_stream:  # a job's events mostly come in runs: look it up once per run
            if stream_id in job_ids:
                job_id = job_ids[stream_id]
            else:
                job_id = job_ids[stream_id] = job_id_of(stream_id)
            last_stream = stream_id
        if job_id is None:
            continue
        try:
            payload = decode_stored(event_type, schema_version, data)
        except (InvalidEventError, UnknownEventTypeError) as e:
            raise PoisonEventError(position, str(e)) from e
        decoded.append((job_id, position, stream_version, payload, occurred_at))
    return decoded


def apply(state: JobStatus | None, event: RecordedEvent) -> JobStatus:
    """Return the status after one event of the job's stream.

    Raises:
        PoisonEventError: the event is not a job event or its payload cannot be decoded.
    """
    job_id, payload = decoded(event)
    draft = None if state is None else JobDraft(state)
    return step(draft, job_id, event.position, event.stream_version, payload, event.occurred_at).freeze()


def requested_status(job_id: str, position: int, payload: JobRequested, occurred_at: str) -> JobStatus:
    """A new job's status once its first event, ``job.requested`` at ``position``, is folded: what
    the store will hold after its next catch-up, known without one (the answer to the request)."""
    return step(None, job_id, position, 1, payload, occurred_at).freeze()


def project_jobs(events: Iterable[RecordedEvent]) -> dict[str, JobStatus]:
    """Fold events (in position order) into the status of every job; other streams are ignored."""
    drafts: dict[str, JobDraft] = {}
    for event in events:
        if job_id_of(event.stream_id) is not None:
            job_id, payload = decoded(event)
            drafts[job_id] = step(
                drafts.get(job_id), job_id, event.position, event.stream_version, payload, event.occurred_at
            )
    return {job_id: draft.freeze() for job_id, draft in drafts.items()}
