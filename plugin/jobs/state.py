"""A job's exact state inside a write transaction, folded from its own stream.

Decisions that must not race (claim a worker slot, record an interruption, a cancel, a cleanup)
read the job's stream inside the ``BEGIN IMMEDIATE`` that records the outcome, so two processes
deciding at once serialise and the second sees the first one's event. The fold is the projection's
own (``projections.job_status.apply``), so the decision and the status shown never disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from events import NewEvent, RecordedEvent, Transaction
from events.codec import encode
from events.ids import job_stream
from events.vocabulary import EventPayload
from plugin.jobs.procs import HOST
from plugin.salesforce.manifest import partial_directory
from projections import job_status
from projections.job_status import JobStatus

ENDED = frozenset({"completed", "failed", "cancelled"})  # cleanup applies; "interrupted" waits for a resume
ACTIVE = frozenset({"requested", "running"})


def folder_text(backup_directory: str, *, status: str, cleaned: bool) -> str:
    """The job's folder as it is on disk now, for people: the backup, its ``.partial`` folder while
    unfinished (or kept to resume), or the planned path saying why nothing is there. The structured
    answers keep the planned path (``backup_directory``), where the backup is or will be."""
    if os.path.isdir(backup_directory):
        return backup_directory
    partial = partial_directory(backup_directory)
    if partial.is_dir():
        return str(partial)
    why = "removed by cleanup" if cleaned else "not created yet" if status == "requested" else "not on disk"
    return f"{backup_directory} ({why})"


def resumable(status: JobStatus) -> bool:
    """Whether the next attempt may start: interrupted (its worker will not come back), or failed
    with a retryable error (an API limit, the network) whose ``.partial`` folder the cleanup keeps
    for that resume. Nobody runs such a job, so a cancel ends it at once."""
    if status.status == "interrupted":
        return True
    failed = status.status == "failed" and not status.cleaned
    return failed and status.error is not None and status.error.retryable


@dataclass(frozen=True)
class JobState:
    """The job as its stream says right now, plus the stream's version (for the next append)."""

    status: JobStatus
    version: int
    request: RecordedEvent  # the job.requested event: causation of everything recorded for the job

    @property
    def ended(self) -> bool:
        return self.status.status in ENDED

    @property
    def active(self) -> bool:
        return self.status.status in ACTIVE


def read_state(tx: Transaction, job_id: str) -> JobState | None:
    """Fold the job's stream as this transaction sees it; None if the job does not exist."""
    events = tx.read_stream(job_stream(job_id))
    if not events or events[0].type != "job.requested":
        return None
    status: JobStatus | None = None
    for event in events:
        status = job_status.apply(status, event)
    assert status is not None
    return JobState(status=status, version=events[-1].stream_version, request=events[0])


def system_event(state: JobState, payload: EventPayload, *, actor: str, **extra: Any) -> NewEvent:
    """An event the runtime records about a job (not its worker): caused by the job's request and part
    of the same MCP request, so an audit by correlation id still shows all of the job."""
    metadata = {"actor": actor, "host": HOST, "pid": os.getpid(), **extra}
    return encode(
        payload,
        metadata=metadata,
        correlation_id=state.request.correlation_id,
        causation_id=state.request.event_id,
    )
