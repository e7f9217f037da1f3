"""Persisted read models (``job_status``, ``backup_catalog``) kept beside the log, with checkpoints.

Rows and the checkpoint of each projection advance in the same ``BEGIN IMMEDIATE`` transaction
(exactly-once effect, whatever crashes in between), and rebuild-from-zero runs the same batch code
from position 0 inside one transaction, so readers see either the old tables or the new ones.
Every read catches up first, so status is never stale even without a projector daemon.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter
from typing import Any, overload

from events import EventLog, EventLogError, Transaction
from events.ids import job_id_of
from events.records import EventRow
from projections.catalog import BackupEntry
from projections.errors import ProjectionError, RewrittenLogError
from projections.job_status import JobStatus
from projections.rowfold import fold_rows

# Bump when the fold or the table shapes change: a stored checkpoint of another version makes the
# next catch-up rebuild from zero.
PROJECTION_VERSION = 2  # 2: job_status.files_total (job.progress v2)
PROJECTIONS = ("job_status", "backup_catalog")
# Both checkpoints move together, in one statement.
_ADVANCE = (
    "INSERT INTO projection_checkpoints (projection, version, position, last_hash) "
    "VALUES (?1, ?3, ?4, ?5), (?2, ?3, ?4, ?5) ON CONFLICT (projection) DO UPDATE SET version = excluded.version, "
    "position = excluded.position, last_hash = excluded.last_hash, "
    "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
)
BATCH = 500  # events per catch-up transaction: short, so writers are not kept waiting
REBUILD_PAGE = 5000  # events per read inside the one rebuild transaction
READ_CACHE = 256  # distinct reads remembered between two commits

_JOB_COLUMNS = tuple(f.name for f in fields(JobStatus))
_ENTRY_COLUMNS = tuple(f.name for f in fields(BackupEntry))

_DDL = (
    """
CREATE TABLE IF NOT EXISTS job_status (
  job_id           TEXT    PRIMARY KEY,
  status           TEXT    NOT NULL,
  phase            TEXT    NOT NULL,
  backup_type      TEXT,
  org_id           TEXT,
  instance_url     TEXT,
  objects_done     INTEGER NOT NULL,
  objects_total    INTEGER NOT NULL,
  records          INTEGER NOT NULL,
  files            INTEGER NOT NULL,
  files_total      INTEGER,
  bytes            INTEGER NOT NULL,
  percent          INTEGER NOT NULL,
  current_object   TEXT,
  requested_at     TEXT,
  started_at       TEXT,
  finished_at      TEXT,
  error            TEXT    CHECK (error IS NULL OR json_valid(error)),
  backup_directory TEXT,
  attempt          INTEGER NOT NULL,
  skipped          INTEGER NOT NULL,
  cleaned          INTEGER NOT NULL,
  cleaned_at       TEXT,
  cancel_requested INTEGER NOT NULL,
  first_position   INTEGER NOT NULL,
  last_position    INTEGER NOT NULL,
  version          INTEGER NOT NULL
) STRICT
""",
    "CREATE INDEX IF NOT EXISTS job_status_newest ON job_status (first_position DESC)",
    # Servers look for active, queued and due jobs every second: without it each look scans every job
    # ever recorded (3 ms at 10,000 jobs, holding the connection a status call waits for).
    "CREATE INDEX IF NOT EXISTS job_status_by_status ON job_status (status, cleaned, first_position)",
    """
CREATE TABLE IF NOT EXISTS backup_catalog (
  job_id           TEXT    PRIMARY KEY,
  org_id           TEXT,
  instance_url     TEXT,
  backup_type      TEXT,
  backup_directory TEXT    NOT NULL,
  started_at       TEXT,
  finished_at      TEXT    NOT NULL,
  objects          INTEGER NOT NULL,
  records          INTEGER NOT NULL,
  files            INTEGER NOT NULL,
  bytes            INTEGER NOT NULL,
  skipped          INTEGER NOT NULL,
  manifest_sha256  TEXT,
  cleaned          INTEGER NOT NULL,
  position         INTEGER NOT NULL
) STRICT
""",
    "CREATE INDEX IF NOT EXISTS backup_catalog_newest ON backup_catalog (position DESC)",
    "CREATE INDEX IF NOT EXISTS backup_catalog_org ON backup_catalog (org_id, position DESC)",
)


INDEXES = ("job_status_newest", "job_status_by_status", "backup_catalog_newest", "backup_catalog_org")


def _upsert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (job_id) DO UPDATE SET {updates}"


_UPSERT_JOB = _upsert_sql("job_status", _JOB_COLUMNS)
_UPSERT_ENTRY = _upsert_sql("backup_catalog", _ENTRY_COLUMNS)


_job_values = attrgetter(*_JOB_COLUMNS)
_ERROR = _JOB_COLUMNS.index("error")


def _job_row(status: JobStatus) -> tuple[Any, ...]:
    row = [int(v) if isinstance(v, bool) else v for v in _job_values(status)]
    error = status.error
    row[_ERROR] = None if error is None else json.dumps(error.to_dict(), sort_keys=True)
    return tuple(row)


def _job_from_row(row: dict[str, Any]) -> JobStatus:
    data = {c: row[c] for c in _JOB_COLUMNS}
    data["error"] = None if row["error"] is None else json.loads(row["error"])
    data["cleaned"] = bool(row["cleaned"])
    data["cancel_requested"] = bool(row["cancel_requested"])
    return JobStatus.from_dict(data)


_entry_values = attrgetter(*_ENTRY_COLUMNS)


def _entry_row(entry: BackupEntry) -> tuple[Any, ...]:
    # attrgetter, not to_dict(): asdict deep-copies every value (a tenth of a rebuild's time)
    return tuple(int(v) if isinstance(v, bool) else v for v in _entry_values(entry))


def _entry_from_row(row: dict[str, Any]) -> BackupEntry:
    data = {c: row[c] for c in _ENTRY_COLUMNS}
    data["cleaned"] = bool(row["cleaned"])
    return BackupEntry.from_dict(data)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a batch folds.

    A fold allocates hundreds of thousands of short-lived objects and no reference cycles, so the
    collector, triggered every 700 allocations, only re-traverses live objects: about 5 % of a
    rebuild's time. Reference counting still frees everything at once; collection resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ProjectionStore:
    """Job status and backup catalog tables in the log's database, caught up on every read."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        # The log's commit stamp (and the projection version) when this store last found itself
        # current: while it is unchanged, nothing can have been appended.
        self._current_at: tuple[int, int, int] | None = None
        # Results of reads made since the stamp in _current_at: while it holds, nothing was committed
        # by anyone, so the same read gives the same rows (a status poll is then a PRAGMA and a lookup).
        self._reads: dict[tuple[Any, ...], Any] = {}
        self._reads_at: tuple[int, int, int] | None = None
        existing = {row["name"] for row in log.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        if not {*PROJECTIONS, *INDEXES} <= existing:  # a new log, or one from before an index was added
            with log.write_transaction() as tx:
                for ddl in _DDL:
                    tx.execute(ddl)

    # -- writing ---------------------------------------------------------------------------------

    def catch_up(self, *, durable: bool = True) -> int:
        """Apply events after the checkpoint in batches of 500; return how many were applied.

        Each batch is one transaction holding the rows and the checkpoint, so a crash between
        batches loses nothing and applies nothing twice. A checkpoint from another projection
        version triggers a rebuild. ``durable=False`` commits without the sync: a power cut may
        then take the fold back with its checkpoint (never one without the other), and the next
        catch-up folds those events again.

        Raises:
            PoisonEventError: an event cannot be applied (the projection stays before it).
            RewrittenLogError: the event at the checkpoint changed since it was applied.
        """
        stamp = (*self._log.commit_stamp(), PROJECTION_VERSION)
        if stamp == self._current_at:
            return 0
        if not self._behind():
            self._current_at = stamp
            return 0
        applied = 0
        done = False
        while not done:
            with _collector_paused(), self._log.write_transaction(durable=durable) as tx:
                position = self._checked_position(tx)
                if position is None:
                    applied += self._rebuild_in(tx)
                    done = True
                else:
                    rows, last_hash = tx.read_rows(after=position, limit=BATCH)
                    self._apply_batch(tx, rows, last_hash)
                    applied += len(rows)
                    done = len(rows) < BATCH
                # Under the write lock nobody else can commit, so this stamp marks "current"
                # until the next commit by anyone (ours adds no change after it).
                stamp = (*self._log.commit_stamp(), PROJECTION_VERSION)
        self._current_at = stamp
        return applied

    @overload
    def catch_up_in(self, tx: Transaction) -> int: ...
    @overload
    def catch_up_in(self, tx: Transaction, *, most: int, most_bytes: int | None = None) -> int | None: ...
    def catch_up_in(self, tx: Transaction, *, most: int | None = None, most_bytes: int | None = None) -> int | None:
        """``catch_up`` inside the caller's write transaction, so a decision taken in ``tx`` (one running
        full backup per org) sees every event up to the write lock, not just up to the last read.

        With ``most``, a caller that must not take long (on an event loop) gets None, and nothing
        applied, when more than ``most`` events are pending, when their data is longer than
        ``most_bytes`` in all (a fold takes as long as its JSON), or when a rebuild is due.
        """
        if most is not None:
            return self._fold_at_most(tx, most, most_bytes)
        position = self._checked_position(tx)
        if position is None:
            return self._rebuild_in(tx)
        applied = 0
        while True:
            rows, last_hash = tx.read_rows(after=position, limit=BATCH)
            self._apply_batch(tx, rows, last_hash)
            applied += len(rows)
            if len(rows) < BATCH:
                return applied
            position = rows[-1][0]

    def follow_in(self, tx: Transaction, *, most: int = BATCH) -> int:
        """Best-effort catch-up inside a writer's own transaction (a worker recording progress).

        The rows then commit with the events, so readers find the projections current and only read,
        instead of each taking the write lock and an fsync to fold the workers' events. Does nothing
        when the projections are more than ``most`` events behind or need a rebuild (readers do that,
        in batches), and never fails the writer: an event that cannot be applied is rolled back to a
        savepoint, left for a reader's ``catch_up`` to report. Returns the events applied.
        """
        tx.execute("SAVEPOINT projections_follow")
        try:
            applied = self._fold_at_most(tx, most) or 0
        except (ProjectionError, EventLogError):
            tx.execute("ROLLBACK TO projections_follow")
            applied = 0
        tx.execute("RELEASE projections_follow")
        return applied

    def _fold_at_most(self, tx: Transaction, most: int, most_bytes: int | None = None) -> int | None:
        """Fold the pending events in ``tx`` if there are at most ``most`` of them, with at most
        ``most_bytes`` of data; else None, with nothing applied (as when a rebuild is due)."""
        position = self._checked_position(tx)
        if position is None:
            return None
        rows, last_hash = tx.read_rows(after=position, limit=most + 1, most_bytes=most_bytes)
        if len(rows) > most or (most_bytes is not None and sum(len(row[5]) for row in rows) > most_bytes):
            return None
        self._apply_batch(tx, rows, last_hash)
        return len(rows)

    def rebuild(self) -> int:
        """Recompute both tables from position 0 in one transaction; return the events applied."""
        with _collector_paused(), self._log.write_transaction() as tx:
            return self._rebuild_in(tx)

    def _rebuild_in(self, tx: Transaction) -> int:
        tx.execute("DROP TABLE IF EXISTS job_status")
        tx.execute("DROP TABLE IF EXISTS backup_catalog")
        for ddl in _DDL:
            tx.execute(ddl)
        # Deleting (not updating) the rows is how a checkpoint legitimately goes back to zero.
        tx.execute(
            "DELETE FROM projection_checkpoints WHERE projection IN (?, ?)",
            PROJECTIONS,
        )
        applied = 0
        position = 0
        while True:
            rows, last_hash = tx.read_rows(after=position, limit=REBUILD_PAGE)
            self._apply_batch(tx, rows, last_hash)
            applied += len(rows)
            if len(rows) < REBUILD_PAGE:
                return applied
            position = rows[-1][0]

    def _behind(self) -> bool:
        """One cheap autocommit read: is there anything to do?"""
        rows = self._log.query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM events) AS head, projection, version, position "
            "FROM projection_checkpoints WHERE projection IN (?, ?)",
            PROJECTIONS,
        )
        if len(rows) != len(PROJECTIONS):
            return True
        return any(row["version"] != PROJECTION_VERSION or row["position"] < row["head"] for row in rows)

    def _checked_position(self, tx: Transaction) -> int | None:
        """The common checkpoint position, or None when the projections must be rebuilt."""
        rows = tx.execute(
            "SELECT projection, version, position, last_hash FROM projection_checkpoints WHERE projection IN (?, ?)",
            PROJECTIONS,
        )
        if len(rows) != len(PROJECTIONS) or any(row["version"] != PROJECTION_VERSION for row in rows):
            return None
        positions = {row["position"] for row in rows}
        if len(positions) != 1:
            return None
        position: int = positions.pop()
        if position:
            stored = tx.execute("SELECT hash FROM events WHERE id = ?", (position,))
            for row in rows:
                if not stored or row["last_hash"] != stored[0]["hash"]:
                    raise RewrittenLogError(row["projection"], position)
        return position

    def _apply_batch(self, tx: Transaction, rows: list[EventRow], last_hash: bytes | None) -> None:
        if not rows:
            if not tx.execute("SELECT 1 FROM projection_checkpoints WHERE projection = ?", (PROJECTIONS[0],)):
                self._advance(tx, 0, None)
            return
        # A stream whose first event is in the batch has no rows stored yet (they hold only events up to
        # the checkpoint): nothing to look up for it (the one event of a new request, mostly).
        streams = {row[1] for row in rows} - {row[1] for row in rows if row[2] == 1}
        job_ids = sorted({job_id for job_id in map(job_id_of, streams) if job_id is not None})
        jobs: dict[str, JobStatus] = {}
        entries: dict[str, BackupEntry] = {}
        for start in range(0, len(job_ids), BATCH):
            chunk = job_ids[start : start + BATCH]
            marks = ", ".join("?" * len(chunk))
            for stored in tx.execute(f"SELECT * FROM job_status WHERE job_id IN ({marks})", chunk):
                jobs[stored["job_id"]] = _job_from_row(stored)
            for stored in tx.execute(f"SELECT * FROM backup_catalog WHERE job_id IN ({marks})", chunk):
                entries[stored["job_id"]] = _entry_from_row(stored)
        touched = fold_rows(rows, jobs=jobs, catalog=entries)
        tx.executemany(_UPSERT_JOB, [_job_row(jobs[j]) for j in sorted(touched)])
        if catalog_rows := [_entry_row(entries[j]) for j in sorted(touched) if j in entries]:
            tx.executemany(_UPSERT_ENTRY, catalog_rows)
        self._advance(tx, rows[-1][0], last_hash)

    def _advance(self, tx: Transaction, position: int, last_hash: bytes | None) -> None:
        tx.execute(_ADVANCE, (*PROJECTIONS, PROJECTION_VERSION, position, last_hash))

    # -- reading ---------------------------------------------------------------------------------

    def _fresh(self) -> None:
        """Catch up; forget the remembered reads if anything was committed since they were made."""
        self.catch_up()
        if self._reads_at != self._current_at or len(self._reads) >= READ_CACHE:
            self._reads.clear()
            self._reads_at = self._current_at

    def _read(self, key: tuple[Any, ...], sql: str, params: tuple[Any, ...]) -> tuple[JobStatus, ...]:
        """Jobs by ``sql`` after catching up, answered from the last identical read while nothing was committed.

        The stamp is taken before the rows are read, so a remembered result is never older than its
        stamp; any commit since (by this connection or another process) moves the stamp and clears them.
        """
        self._fresh()
        jobs: tuple[JobStatus, ...] | None = self._reads.get(key)
        if jobs is None:
            jobs = self._reads[key] = tuple(_job_from_row(row) for row in self._log.query(sql, params))
        return jobs

    def forget_reads(self) -> None:
        """Drop the remembered reads: the next read looks the rows up (for measuring the lookup itself)."""
        self._reads.clear()

    def job(self, job_id: str) -> JobStatus | None:
        """The status of one job (after catching up), or None if the log has no such job."""
        found = self._read(("job", job_id), "SELECT * FROM job_status WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    def jobs(self, *, limit: int = 20, offset: int = 0) -> list[JobStatus]:
        """Jobs newest first (by the position of their first event)."""
        sql = "SELECT * FROM job_status ORDER BY first_position DESC LIMIT ? OFFSET ?"
        return list(self._read(("jobs", limit, offset), sql, (limit, offset)))

    def find_jobs(
        self,
        *,
        statuses: Sequence[str],
        org_id: str | None = None,
        backup_type: str | None = None,
        cleaned: bool | None = None,
        retryable: bool | None = None,
        limit: int = 1000,
        tx: Transaction | None = None,
        catch_up: bool = True,
    ) -> list[JobStatus]:
        """Jobs in one of ``statuses`` (optionally of one org / type / cleaned state / retryable error), oldest first.

        With ``tx`` the read runs in that transaction (call ``catch_up_in(tx)`` first); without it the
        store catches up on its own, unless ``catch_up=False`` (a cheap look that may be a little
        behind, for a caller that decides again inside a transaction).
        """
        if not statuses:
            return []
        where = [f"status IN ({', '.join('?' * len(statuses))})"]
        params: list[Any] = list(statuses)
        for column, value in (("org_id", org_id), ("backup_type", backup_type)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if cleaned is not None:
            where.append("cleaned = ?")
            params.append(int(cleaned))
        if retryable is not None:  # of the job's error; a job without one counts as not retryable
            where.append("COALESCE(json_extract(error, '$.retryable'), 0) = ?")
            params.append(int(retryable))
        sql = f"SELECT * FROM job_status WHERE {' AND '.join(where)} ORDER BY first_position LIMIT ?"
        params.append(limit)
        if tx is None:
            if catch_up:
                self.catch_up()
            rows = self._log.query(sql, params)
        else:
            rows = tx.execute(sql, params)
        return [_job_from_row(row) for row in rows]

    def count_jobs(self) -> int:
        """Number of jobs in the log (remembered, like the reads above, until the next commit)."""
        self._fresh()
        count: int | None = self._reads.get(("count_jobs",))
        if count is None:
            count = self._reads[("count_jobs",)] = int(self._log.query("SELECT COUNT(*) AS n FROM job_status")[0]["n"])
        return count

    def backups(self, *, limit: int = 20, offset: int = 0, org_id: str | None = None) -> list[BackupEntry]:
        """Completed backups newest first, optionally of one org."""
        self.catch_up()
        if org_id is None:
            rows = self._log.query(
                "SELECT * FROM backup_catalog ORDER BY position DESC LIMIT ? OFFSET ?", (limit, offset)
            )
        else:
            rows = self._log.query(
                "SELECT * FROM backup_catalog WHERE org_id = ? ORDER BY position DESC LIMIT ? OFFSET ?",
                (org_id, limit, offset),
            )
        return [_entry_from_row(row) for row in rows]

    def count_backups(self, org_id: str | None = None) -> int:
        """Number of completed backups, optionally of one org."""
        self.catch_up()
        if org_id is None:
            rows = self._log.query("SELECT COUNT(*) AS n FROM backup_catalog")
        else:
            rows = self._log.query("SELECT COUNT(*) AS n FROM backup_catalog WHERE org_id = ?", (org_id,))
        return int(rows[0]["n"])

    def latest_backup(self, org_id: str) -> BackupEntry | None:
        """The newest completed backup of an org (the base of an incremental backup), or None."""
        found = self.backups(limit=1, org_id=org_id)
        return found[0] if found else None

    def dump(self) -> dict[str, Any]:
        """All rows of both tables and the checkpoints, in a deterministic order (rebuild checks)."""
        self.catch_up()
        checkpoints = self._log.query(
            "SELECT projection, version, position, last_hash FROM projection_checkpoints "
            "WHERE projection IN (?, ?) ORDER BY projection",
            PROJECTIONS,
        )
        return {
            "job_status": self._log.query("SELECT * FROM job_status ORDER BY job_id"),
            "backup_catalog": self._log.query("SELECT * FROM backup_catalog ORDER BY job_id"),
            "checkpoints": [
                {**row, "last_hash": None if row["last_hash"] is None else bytes(row["last_hash"]).hex()}
                for row in checkpoints
            ],
        }
