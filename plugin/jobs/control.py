"""Cancel and resume: decided inside the write transaction that records them.

A cancel of a job nobody runs (queued, interrupted) ends it at once; a running worker stops by itself
(``keeper.py``) or by force (``recovery.enforce_cancels``). A resume claims a worker slot for the next
attempt of an interrupted job and starts its worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.ids import job_stream
from events.vocabulary import JobCancelled, JobCancelRequested
from plugin.errors import JobNotFoundError, JobStateError
from plugin.jobs import leases
from plugin.jobs.state import ACTIVE, ENDED, read_state, resumable, system_event
from projections import JobStatus

if TYPE_CHECKING:
    from plugin.jobs.runtime import JobRuntime


def cancel(
    runtime: JobRuntime,
    job_id: str,
    *,
    reason: str | None = None,
    actor: str = "mcp",
    correlation_id: str | None = None,
) -> JobStatus:
    """Record ``job.cancel_requested``; a job without a worker (queued, interrupted, or failed retryably
    and waiting for a resume) is cancelled at once, and the cleanup then removes its ``.partial`` folder.

    A running worker sees the request within 0.1 s and stops within about a second; one that
    does not is stopped by force after ``SFBACKUP_CANCEL_GRACE`` (``job.cancelled{forced: true}``).
    Asking again while the cancel is pending changes nothing.

    Raises:
        JobNotFoundError: no such job.
        JobStateError: the job has already ended (a retryable failure waiting for a resume has not).
    """
    with runtime._lock:
        with runtime.log.write_transaction() as tx:
            state = read_state(tx, job_id)
            if state is None:
                raise JobNotFoundError(job_id)
            status = state.status
            if status.status in ENDED and not resumable(status):
                raise JobStateError(
                    f"Job {job_id} has already {'been ' if status.status == 'cancelled' else ''}"
                    f"{status.status} (at {status.finished_at}); there is nothing to cancel. Start a new "
                    "backup with salesforce_backup if you need one."
                )
            if not status.cancel_requested:
                # The job's events keep the correlation id of the request that started it; the
                # MCP request that cancels it is named in the metadata.
                extra = {"tool": "salesforce_backup_cancel" if actor == "mcp" else "sfbackup cancel"}
                if correlation_id is not None:
                    extra["request"] = correlation_id
                events = [system_event(state, JobCancelRequested(reason=reason), actor=actor, **extra)]
                if resumable(status) or leases.get(tx, job_id) is None:
                    # Nobody runs it (queued, interrupted, failed waiting for a resume): cancelled at once.
                    events.append(system_event(state, JobCancelled(forced=False), actor=actor, **extra))
                tx.append(job_stream(job_id), events, expected_version=state.version)
        return runtime.job(job_id)


def resume(runtime: JobRuntime, job_id: str, *, spawn: bool = True) -> JobStatus:
    """Start attempt n+1 of an interrupted job: same job id, same backup folder.

    The worker learns its attempt from ``--attempt`` (checked against the claimed lease) and
    exports into the job's ``<backup folder>.partial`` again.

    Raises:
        JobNotFoundError: no such job.
        JobStateError: the job is not interrupted, a full backup of its org runs, or no slot is free.
    """
    with runtime._lock:
        with runtime.log.write_transaction() as tx:
            runtime.store.catch_up_in(tx)
            state = read_state(tx, job_id)
            if state is None:
                raise JobNotFoundError(job_id)
            status = state.status
            if not resumable(status) or leases.get(tx, job_id) is not None:
                doing = "is starting again" if resumable(status) else f"is {status.status}"
                if status.status == "failed":
                    doing = "failed with an error that a new attempt would not fix"
                raise JobStateError(
                    f"Job {job_id} {doing}; only an interrupted job, or one that failed with a retryable "
                    "error, can be resumed. Check it with salesforce_backup_status, or start a new backup."
                )
            if status.backup_type == "full":
                other = runtime.store.find_jobs(
                    statuses=tuple(ACTIVE), org_id=status.org_id, backup_type="full", limit=1, tx=tx
                )
                if other:
                    raise JobStateError(
                        f"A full backup of org {status.org_id} is already running as job {other[0].job_id}; "
                        f"resume {job_id} after it ends, or cancel one of them."
                    )
            attempt = runtime.claim_in(tx, job_id, status.attempt + 1)
            if attempt is None:
                raise JobStateError(
                    f"All {runtime.settings.max_workers} worker slots are busy (SFBACKUP_MAX_WORKERS); "
                    f"resume job {job_id} when a running backup ends."
                )
        if spawn:
            runtime.spawn_worker(job_id, attempt)
        return runtime.job(job_id)
