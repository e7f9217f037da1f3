"""Finding lost workers and enforcing cancels: what turns a dead or stuck worker into one event.

A lease is lost when its worker process is gone (checked by pid *and* start token on this host), or
when its heartbeats stopped and the lease ran out (a stalled or remote worker), or when no worker took
a claimed slot in time. The reaper settles each lost lease in one transaction: it re-reads lease and
stream under the write lock, drops the lease and records exactly one event: ``job.interrupted``
(resumable), ``job.cancelled{forced: true}`` if a cancel was pending, or ``job.failed`` when the
worker never started. Racing reapers in any number of processes are safe: the second finds no lease.
"""

from __future__ import annotations

import logging
import subprocess
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from events.ids import job_stream
from events.vocabulary import EventPayload, JobCancelled, JobFailed, JobInterrupted
from plugin.jobs import leases
from plugin.jobs.leases import Lease
from plugin.jobs.settings import WORKER_START_SECONDS
from plugin.jobs.state import ACTIVE, read_state, system_event

if TYPE_CHECKING:
    from plugin.jobs.runtime import JobRuntime

logger = logging.getLogger(__name__)

KILL_AFTER = 2.0  # seconds between SIGTERM and SIGKILL of a worker that ignores a cancel


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lost(lease: Lease, now: float, *, start_within: float) -> str | None:
    """Why the lease's worker counts as lost, or None while it may still be working."""
    if not lease.taken:
        if lease.expired(now):
            return f"no worker process took attempt {lease.attempt} within {start_within:g} s"
        return None
    proc = lease.process()
    if proc is not None and proc.alive() is False:
        return (
            f"worker {lease.worker_id} is gone: process {proc.pid} on {proc.host} ended without a terminal "
            f"event for attempt {lease.attempt}"
        )
    if lease.expired(now):
        return (
            f"worker {lease.worker_id} stopped renewing its lease: last heartbeat {_when(lease.heartbeat_at)}, "
            f"lease ran out {_when(lease.lease_until)}; attempt {lease.attempt} is fenced"
        )
    return None


def reap(runtime: JobRuntime) -> list[str]:
    """Settle every lost lease; return the ids of the jobs that got an event."""
    now = time.time()
    with runtime._lock:
        candidates = [
            lease for lease in leases.every(runtime.log) if lost(lease, now, start_within=WORKER_START_SECONDS)
        ]
    return [lease.job_id for lease in candidates if settle(runtime, lease.job_id, lease.attempt)]


def child_exited(runtime: JobRuntime, job_id: str, attempt: int, code: int) -> bool:
    """A worker this runtime started has exited; if it left its lease behind, it died: settle now."""
    lease = leases.get(runtime.log, job_id)
    if lease is None or lease.attempt != attempt:
        return False  # it recorded its end (or was fenced by a newer attempt)
    if lease.taken:
        why = f"worker {lease.worker_id} exited with code {code} without a terminal event for attempt {attempt}"
    else:
        why = f"the worker process of attempt {attempt} exited with code {code} before it started"
    return settle(runtime, job_id, attempt, reason=why)


def settle(runtime: JobRuntime, job_id: str, attempt: int, *, reason: str | None = None) -> bool:
    """Drop a lost lease and record what became of its job, once. ``reason`` skips the loss check
    (the caller knows the worker is gone). Returns True if an event was recorded."""
    with runtime._lock, runtime.log.write_transaction() as tx:
        lease = leases.get(tx, job_id)
        if lease is None or lease.attempt != attempt:
            return False
        why = reason or lost(lease, time.time(), start_within=WORKER_START_SECONDS)
        if why is None:
            return False  # it renewed meanwhile
        leases.release(tx, job_id, attempt)
        state = read_state(tx, job_id)
        if state is None or state.status.status not in ACTIVE:
            return False  # ended already, or an interrupted job whose resume never started: it stays so
        status = state.status
        payload: EventPayload
        if status.cancel_requested:
            payload = JobCancelled(forced=lease.taken)
        elif lease.taken:
            payload = JobInterrupted(reason=why, attempt=attempt)
        else:
            log_file = runtime.home / "logs" / f"{job_id}.log"
            payload = JobFailed(
                error_code="WORKER_DID_NOT_START",
                message=f"The backup never started: {why}. See {log_file}; then start the backup again.",
                retryable=True,
                attempt=attempt,
                phase="queued",
            )
        event = system_event(state, payload, actor="reaper", lease_attempt=attempt)
        tx.append(job_stream(job_id), [event], expected_version=state.version)
    logger.warning("job %s: %s recorded (%s)", job_id, payload.TYPE, why)
    return True


def _cancel_asked_at(runtime: JobRuntime, job_id: str) -> float | None:
    asked = [e for e in runtime.log.read_stream(job_stream(job_id)) if e.type == "job.cancel_requested"]
    if not asked:
        return None
    return datetime.fromisoformat(asked[0].occurred_at).timestamp()


def enforce_cancels(runtime: JobRuntime) -> list[str]:
    """Stop, by force, workers that did not honour a cancel within ``SFBACKUP_CANCEL_GRACE``.

    A worker on this host is sent SIGTERM, then SIGKILL (its pid checked by start token, or, where
    there is no ``/proc``, only the worker this runtime spawned); the reaper path then records
    ``job.cancelled{forced: true}``. A worker that cannot be signalled (another host) is fenced
    after twice the grace: its lease goes, so it records nothing more and stops at its next heartbeat.
    """
    grace = runtime.settings.cancel_grace
    now = time.time()
    forced: list[str] = []
    with runtime._lock:
        # A cancel is recorded by a runtime that catches up right after: a look without catch-up sees it.
        active = runtime.store.find_jobs(statuses=tuple(ACTIVE), catch_up=False)
        pending = [j for j in active if j.cancel_requested]
    for job in pending:
        asked = _cancel_asked_at(runtime, job.job_id)
        lease = leases.get(runtime.log, job.job_id)
        if asked is None or now - asked < grace or lease is None or not lease.taken:
            continue  # a claim nobody took is the reaper's (start deadline)
        proc = lease.process()
        child = runtime.child(job.job_id)
        stopped = False
        if proc is not None and proc.local() and proc.token is not None:
            stopped = proc.stop(KILL_AFTER)
        elif child is not None:
            child.terminate()
            try:
                child.wait(KILL_AFTER)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            stopped = True
        if stopped or now - asked >= 2 * grace:
            why = "stopped by force: the worker did not honour the cancel within the grace period"
            if settle(runtime, job.job_id, lease.attempt, reason=why):
                forced.append(job.job_id)
    return forced
