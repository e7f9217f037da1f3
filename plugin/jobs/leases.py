"""Worker leases: a mutable table beside the log (liveness is not history, so it is not in the log).

One row per job that holds a worker slot. The runtime *claims* a row (attempt n, no worker yet) in
the transaction that decides to start the job, which is also where the cap on concurrent workers is
counted; the worker process *takes* it (its id, host, pid) when it starts, *renews* it with
heartbeats, and *releases* it in the transaction of its terminal event. The attempt number is the
fencing token: every worker append checks, inside its own ``BEGIN IMMEDIATE``, that the row still
names this attempt and this worker, so a worker whose lease was taken over (it stalled, the reaper
gave up on it, a resume started attempt n+1) cannot record anything, atomically.

The table lives in plugin/, created through ``EventLog.write_transaction``: ``events/`` stays free of
job concepts and its migrations untouched. It is expendable: deleting every row only makes running
workers stop (fenced) and their jobs be recorded as interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from events import EventLog, NewEvent, Transaction
from events.ids import job_stream
from events.vocabulary import holds_outcome
from plugin.errors import LeaseLostError
from plugin.jobs.procs import ProcessRef
from projections import ProjectionStore

DDL = """
CREATE TABLE IF NOT EXISTS job_leases (
  job_id       TEXT    PRIMARY KEY,
  attempt      INTEGER NOT NULL CHECK (attempt >= 1),  -- fencing token, also in every event's metadata
  worker_id    TEXT,                                   -- NULL until the worker process takes the lease
  host         TEXT,
  pid          INTEGER,
  pid_token    TEXT,                                   -- the pid's start time: tells a reused pid apart
  claimed_at   REAL    NOT NULL,                       -- unix time
  lease_until  REAL    NOT NULL,                       -- unix time; heartbeats move it on
  heartbeat_at REAL
) STRICT
"""


@dataclass(frozen=True)
class Lease:
    job_id: str
    attempt: int
    worker_id: str | None
    host: str | None
    pid: int | None
    pid_token: str | None
    claimed_at: float
    lease_until: float
    heartbeat_at: float | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Lease:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def taken(self) -> bool:
        """A worker process has started and taken the lease."""
        return self.worker_id is not None

    def process(self) -> ProcessRef | None:
        if self.host is None or self.pid is None:
            return None
        return ProcessRef(self.host, self.pid, self.pid_token)

    def expired(self, now: float) -> bool:
        return self.lease_until < now


def ensure_table(log: EventLog) -> None:
    """Create ``job_leases`` once per file (cheap to call on every open)."""
    if not log.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'job_leases'"):
        with log.write_transaction() as tx:
            tx.execute(DDL)


def get(tx: Transaction | EventLog, job_id: str) -> Lease | None:
    rows = (tx.execute if isinstance(tx, Transaction) else tx.query)(
        "SELECT * FROM job_leases WHERE job_id = ?", (job_id,)
    )
    return Lease.of(rows[0]) if rows else None


def every(tx: Transaction | EventLog) -> list[Lease]:
    """All leases, oldest claim first."""
    rows = (tx.execute if isinstance(tx, Transaction) else tx.query)("SELECT * FROM job_leases ORDER BY claimed_at")
    return [Lease.of(row) for row in rows]


def held(tx: Transaction, now: float) -> int:
    """Worker slots in use: leases not yet run out (a claim not yet taken reserves its slot too)."""
    rows = tx.execute("SELECT COUNT(*) AS n FROM job_leases WHERE lease_until >= ?", (now,))
    return int(rows[0]["n"])


def claim(tx: Transaction, job_id: str, attempt: int, *, start_within: float, now: float | None = None) -> Lease:
    """Reserve a worker slot for attempt ``attempt``; the worker must take it within ``start_within`` s."""
    now = time.time() if now is None else now
    rows = tx.execute(
        "INSERT INTO job_leases (job_id, attempt, claimed_at, lease_until) VALUES (?, ?, ?, ?) RETURNING *",
        (job_id, attempt, now, now + start_within),
    )
    return Lease.of(rows[0])


def claim_if_free(tx: Transaction, job_id: str, attempt: int, *, cap: int, start_within: float, now: float) -> bool:
    """``claim`` if fewer than ``cap`` slots are held (``held``), counted and claimed in one statement:
    a request's claim, which needs no count for itself. False: every slot is held, nothing written."""
    rows = tx.execute(
        "INSERT INTO job_leases (job_id, attempt, claimed_at, lease_until) "
        "SELECT ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM job_leases WHERE lease_until >= ?) < ? RETURNING job_id",
        (job_id, attempt, now, now + start_within, now, cap),
    )
    return bool(rows)


def take(tx: Transaction, job_id: str, attempt: int, worker_id: str, proc: ProcessRef, *, lease_seconds: float) -> bool:
    """The worker process starts: record who it is. False if the claim is not (or no longer) there."""
    now = time.time()
    rows = tx.execute(
        "UPDATE job_leases SET worker_id = ?, host = ?, pid = ?, pid_token = ?, heartbeat_at = ?, lease_until = ? "
        "WHERE job_id = ? AND attempt = ? AND worker_id IS NULL RETURNING job_id",
        (worker_id, proc.host, proc.pid, proc.token, now, now + lease_seconds, job_id, attempt),
    )
    return bool(rows)


def renew(tx: Transaction, job_id: str, attempt: int, worker_id: str, *, lease_seconds: float) -> bool:
    """A heartbeat; False means the lease is lost (fenced)."""
    now = time.time()
    rows = tx.execute(
        "UPDATE job_leases SET heartbeat_at = ?, lease_until = ? "
        "WHERE job_id = ? AND attempt = ? AND worker_id = ? RETURNING job_id",
        (now, now + lease_seconds, job_id, attempt, worker_id),
    )
    return bool(rows)


def holds(tx: Transaction, job_id: str, attempt: int, worker_id: str) -> bool:
    rows = tx.execute(
        "SELECT 1 FROM job_leases WHERE job_id = ? AND attempt = ? AND worker_id = ?", (job_id, attempt, worker_id)
    )
    return bool(rows)


def release(tx: Transaction, job_id: str, attempt: int | None = None) -> Lease | None:
    """Drop the job's lease (only attempt ``attempt``'s, if given); return what was dropped."""
    if attempt is None:
        rows = tx.execute("DELETE FROM job_leases WHERE job_id = ? RETURNING *", (job_id,))
    else:
        rows = tx.execute("DELETE FROM job_leases WHERE job_id = ? AND attempt = ? RETURNING *", (job_id, attempt))
    return Lease.of(rows[0]) if rows else None


def fenced_append(
    log: EventLog,
    job_id: str,
    attempt: int,
    worker_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: int | None,
    release_lease: bool = False,
    store: ProjectionStore | None = None,
) -> list[int]:
    """Append a worker's events only while it holds the lease, checked in the same transaction.

    ``release_lease`` drops the lease in that transaction too (the terminal event frees the slot).
    With ``store`` the projections follow in that transaction as well (``ProjectionStore.follow_in``),
    so the servers' status reads find them current and never write.

    Raises:
        LeaseLostError: the lease is gone or names another attempt or worker; nothing was written.
    """
    with log.write_transaction(durable=holds_outcome(e.type for e in events)) as tx:
        if not holds(tx, job_id, attempt, worker_id):
            current = get(tx, job_id)
            held_by = "nobody" if current is None else f"attempt {current.attempt} ({current.worker_id or 'starting'})"
            raise LeaseLostError(
                f"Job {job_id}: attempt {attempt} ({worker_id}) no longer holds the lease, {held_by} does; "
                "this worker stops without recording anything more."
            )
        positions = tx.append(job_stream(job_id), events, expected_version=expected_version)
        if release_lease:
            release(tx, job_id, attempt)
        if store is not None:
            store.follow_in(tx)
        return positions
