"""The append-only SQLite event log: the only module in sfbackup that imports sqlite3.

Every write is ``BEGIN IMMEDIATE ... COMMIT`` on an autocommit connection (``isolation_level=None``):
a deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT when another
process committed in between, and the busy handler cannot help. Reads fetch everything and so never
leave a read transaction open (an open reader pins the WAL). sqlite3 errors become ``EventLogError``s
here and nowhere else.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from events.anchors import Anchor
from events.chain import (
    GENESIS_HASH,
    ChainFields,
    ChainReport,
    ChainRow,
    chain_body,
    verify_rows,
)
from events.errors import (
    ChainError,
    ConcurrencyError,
    EventLogError,
    IdempotencyConflictError,
    InvalidEventError,
    LogIntegrityError,
    StorageFullError,
    StoreBusyError,
)
from events.frozen import build
from events.jsontext import loads
from events.records import EventRow, NewEvent, RecordedEvent, utc_now
from events.schema import MIGRATIONS, REQUIRED_TRIGGERS, SCHEMA_VERSION
from events.vocabulary import OUTCOME_TYPES, REGISTRY, holds_outcome, require_known

Params = Sequence[Any] | Mapping[str, Any]

_COLUMNS = (
    "id, event_id, stream_id, stream_version, type, schema_version, data, metadata, "
    "correlation_id, causation_id, occurred_at, recorded_at, hash"
)
_VERIFY_BATCH = 5000
_LOOKUP_BATCH = 500
# Twice SQLite's auto-checkpoint size (1000 pages of 4 KiB): a WAL beyond it grew while a reader
# pinned it, and stays that big (reused, never shrunk) until a TRUNCATE checkpoint.
WAL_TRUNCATE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WalCheckpoint:
    """What a housekeeping checkpoint found and did; ``busy`` means try again later."""

    ran: bool
    busy: bool
    wal_bytes_before: int
    wal_bytes_after: int


@dataclass(frozen=True)
class FileReport:
    """What the file itself says: full integrity check, guard triggers, positions ever issued."""

    integrity: tuple[str, ...]  # ("ok",) for a sound file
    missing_triggers: tuple[str, ...]
    highest_issued: int  # sqlite_sequence: AUTOINCREMENT's high-water mark, survives deleted rows
    checkpoints: tuple[Anchor, ...]  # where each projection stopped, with the hash it saw there


class _translated:
    """Turn sqlite3 errors into the most specific EventLogError (the one translation point).

    A class, not a ``@contextmanager`` generator: every statement runs inside one, and the
    generator's setup was a few microseconds each, tens per backup request.
    """

    __slots__ = ("context",)

    def __init__(self, context: str = "") -> None:
        self.context = context

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(error, sqlite3.Error):
            raise _translate(error, self.context) from error


def _translate(error: sqlite3.Error, context: str) -> EventLogError:
    message = str(error)
    prefix = f"{context}: " if context else ""
    if isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return StoreBusyError(
            f"{prefix}the event log stayed locked past the busy timeout ({message}): another process "
            "holds a long write transaction. Nothing was recorded by this call; try again in a moment"
        )
    if isinstance(error, sqlite3.DatabaseError) and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StorageFullError(
            f"{prefix}no room left for the event log ({message}); free space on that disk (or raise the quota), "
            "then try again: nothing was recorded by this call"
        )
    if "hash chain broken" in message:
        return ChainError(f"{prefix}append does not link to the head of the hash chain")
    if "wrong expected version" in message:
        return EventLogError(f"{prefix}stream versions must be contiguous ({message})")
    if "append-only" in message:
        return EventLogError(f"{prefix}events are append-only: record a new event instead of changing one")
    if isinstance(error, sqlite3.DatabaseError) and "not a database" in message:
        return LogIntegrityError(f"{prefix}the file is not an SQLite database ({message})")
    if isinstance(error, sqlite3.DatabaseError) and "malformed" in message:
        return LogIntegrityError(f"{prefix}the file is damaged ({message})")
    return EventLogError(f"{prefix}{message}")


def _recorded(row: tuple[Any, ...]) -> RecordedEvent:
    position, event_id, stream_id, version, type_, schema, data, metadata, correlation, causation, at, rec, digest = row
    try:
        data, metadata = loads(data), {} if metadata == "{}" else loads(metadata)
    except ValueError as e:  # only a row written around EventLog (no CHECK keeps it out since migration 4)
        raise LogIntegrityError(
            f"the event at position {position} holds data or metadata that is not JSON ({e}); "
            "`sfbackup verify` names every such row"
        ) from e
    return build(
        RecordedEvent,
        {
            "position": position,
            "event_id": event_id,
            "stream_id": stream_id,
            "stream_version": version,
            "type": type_,
            "schema_version": schema,
            "data": data,
            "metadata": metadata,
            "correlation_id": correlation,
            "causation_id": causation,
            "occurred_at": at,
            "recorded_at": rec,
            "hash": digest.hex(),
        },
    )


def _tuples(conn: sqlite3.Connection, sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Rows as plain tuples: the connection's ``sqlite3.Row`` factory costs more than the reads it serves."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


def _limit(limit: int | None) -> int:
    if limit is None:
        return -1
    if limit < 0:
        raise ValueError("limit must be >= 0 or None")
    return limit


def _read_all(conn: sqlite3.Connection, after: int, limit: int | None) -> list[RecordedEvent]:
    rows = _tuples(conn, f"SELECT {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, _limit(limit)))
    return [_recorded(row) for row in rows]


def _read_rows(
    conn: sqlite3.Connection, after: int, limit: int | None, most_bytes: int | None = None
) -> tuple[list[EventRow], bytes | None]:
    sql = (
        "SELECT id, stream_id, stream_version, type, schema_version, data, occurred_at "
        "FROM events WHERE id > ? ORDER BY id LIMIT ?"
    )
    if most_bytes is None:
        rows: list[EventRow] = _tuples(conn, sql, (after, _limit(limit)))
    else:  # row by row, so nothing after the row that brings the data over most_bytes is read
        cursor = conn.cursor()
        cursor.row_factory = None
        rows, size = [], 0
        try:
            for row in cursor.execute(sql, (after, _limit(limit))):
                rows.append(row)
                size += len(row[5])
                if size > most_bytes:
                    break
        finally:
            cursor.close()
    if not rows:
        return rows, None
    last = conn.execute("SELECT hash FROM events WHERE id = ?", (rows[-1][0],)).fetchone()
    return rows, bytes(last[0])


def _read_stream(conn: sqlite3.Connection, stream_id: str, after: int, limit: int | None) -> list[RecordedEvent]:
    rows = _tuples(
        conn,
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND stream_version > ? ORDER BY stream_version LIMIT ?",
        (stream_id, after, _limit(limit)),
    )
    return [_recorded(row) for row in rows]


def _stream_version(conn: sqlite3.Connection, stream_id: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?", (stream_id,)
    ).fetchone()
    return int(row[0])


def _head(conn: sqlite3.Connection) -> tuple[int, bytes]:
    row = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS_HASH
    return int(row[0]), bytes(row[1])


def _already_recorded(conn: sqlite3.Connection, stream_id: str, events: Sequence[NewEvent]) -> list[int] | None:
    """Return the original positions if this exact batch was appended before, else None.

    The payload compared is (stream, type, schema version, data). Metadata, correlation, causation
    and occurred_at describe the attempt, not the event, so a retry may differ in them.

    Raises:
        IdempotencyConflictError: an id was used for another payload, or only part of the batch exists.
    """
    ids = [event.event_id for event in events]
    found: dict[str, sqlite3.Row] = {}
    for start in range(0, len(ids), _LOOKUP_BATCH):
        chunk = ids[start : start + _LOOKUP_BATCH]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT id, event_id, stream_id, type, schema_version, data FROM events WHERE event_id IN ({marks})",
            chunk,
        ).fetchall():
            found[row["event_id"]] = row
    if not found:
        return None
    for event in events:
        row = found.get(event.event_id)
        if row is None:
            recorded = next(iter(found))
            raise IdempotencyConflictError(
                recorded,
                "is already recorded but other events of this batch are not (a batch is all or nothing)",
            )
        if (row["stream_id"], row["type"], row["schema_version"], row["data"]) != (
            stream_id,
            event.type,
            event.schema_version,
            event.data_json,
        ):
            raise IdempotencyConflictError(
                event.event_id,
                f"is already recorded at position {row['id']} with another stream, type or data",
            )
    return [int(found[event.event_id]["id"]) for event in events]


class _DuplicateIdError(Exception):
    """An insert hit a recorded event id: the caller rolls the batch back and looks the ids up."""

    def __init__(self, error: sqlite3.IntegrityError) -> None:
        super().__init__(str(error))
        self.error = error


# Rows per INSERT statement at most. One multi-row statement costs less per row than executemany
# (one statement transaction instead of one per row), and a batch costs least as one statement:
# each one also journals the pages it will change and updates sqlite_sequence (cutting 100 events
# into 64 + 32 + 4 cost 1.5k instructions an event more). So each batch size up to this has its
# own statement, made on first use and then cached (here and by sqlite3); a larger batch is cut.
_MAX_ROWS = 128
_HEAD_PARAMS, _ROW_PARAMS = 7, 9  # the most a statement binds once (shared values) and per row (causes)


_COLUMNS_WRITTEN = (
    "event_id",
    "stream_id",
    "stream_version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
)
_SHARED = ("type", "schema_version", "metadata")


@functools.cache  # at most _MAX_ROWS x 4 statements
def _insert_sql(rows: int, causes: bool, shared: bool) -> str:
    """An INSERT of ``rows`` consecutive events of one stream, with numbered parameters.

    ?1 stream id, ?2 recorded_at, ?3 the first row's stream version, ?4 its prev_hash; when
    ``shared`` (every event of the batch has the same type, schema version and metadata) ?5-?7 are
    those three. Then per row: event_id, (type, schema_version,) data, (metadata,) occurred_at,
    hash, and correlation and causation ids when ``causes`` (without them both columns are NULL).
    Row i's version is ?3 + i and its prev_hash is the hash parameter of row i - 1, so what a
    batch shares is bound once: binding parameters (and adapting None) is a large part of an
    insert's cost in sqlite3.
    """
    per_row = [c for c in _COLUMNS_WRITTEN if c not in ("stream_id", "stream_version", "recorded_at", "prev_hash")]
    head = {"stream_id": "?1", "recorded_at": "?2"}
    if shared:
        per_row = [c for c in per_row if c not in _SHARED]
        head |= {name: f"?{5 + i}" for i, name in enumerate(_SHARED)}
    columns = _COLUMNS_WRITTEN + (("correlation_id", "causation_id") if causes else ())
    per_row += ["correlation_id", "causation_id"] if causes else []
    first, width = 5 + (len(_SHARED) if shared else 0), len(per_row)
    values = []
    for i in range(rows):
        b = first + i * width
        slot = {name: f"?{b + k}" for k, name in enumerate(per_row)} | head
        slot["stream_version"] = f"?3+{i}"
        slot["prev_hash"] = "?4" if i == 0 else f"?{b - width + per_row.index('hash')}"
        values.append(f"({','.join(slot[c] for c in columns)})")
    return f"INSERT INTO events ({', '.join(columns)}) VALUES {','.join(values)}"


_STATE = (
    "SELECT (SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?), "
    "(SELECT hash FROM events ORDER BY id DESC LIMIT 1)"
)


_Statements = tuple[tuple[str, list[Any]], ...]  # a prepared batch's INSERTs


def _prepare(
    conn: sqlite3.Connection, stream_id: str, events: Sequence[NewEvent], expected_version: int | None
) -> list[int] | _Statements:
    """Check a batch and make its INSERT statements, hashes included; see ``EventLog.append`` for the contract.

    Writes nothing, so a refused event leaves nothing behind. Returns the positions instead when the
    batch is a retry already recorded. Optimistic about idempotency: a new batch (the normal case)
    costs no id lookup. A retried one is noticed by the version check (expected version behind) or,
    at ``_write``, by the UNIQUE event_id constraint (``_DuplicateIdError``, after which the caller
    undoes what the batch wrote and calls ``_recorded_or_raise``).
    """
    if not isinstance(stream_id, str) or not 1 <= len(stream_id) <= 200:
        raise InvalidEventError(f"stream id must be a string of 1 to 200 characters, got {stream_id!r}")
    events = list(events)
    causes = False
    shared = (events[0].type, events[0].schema_version, events[0].metadata_json) if events else None
    for event in events:
        if type(event) is not NewEvent and not isinstance(event, NewEvent):
            raise InvalidEventError(f"append takes NewEvent objects, got {type(event).__name__}")
        if event.type not in REGISTRY:
            require_known(event.type)
        if event.correlation_id is not None or event.causation_id is not None:
            causes = True
        if shared is not None and (event.type, event.schema_version, event.metadata_json) != shared:
            shared = None
    if len({event.event_id for event in events}) != len(events):
        ids = [event.event_id for event in events]
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise IdempotencyConflictError(duplicate, "appears twice in one batch")
    if not events:
        return []
    current, head_hash = conn.execute(_STATE, (stream_id,)).fetchone()
    if expected_version is not None and expected_version != current:
        original = _already_recorded(conn, stream_id, events)
        if original is not None:
            return original
        raise ConcurrencyError(stream_id, expected_version, current)
    prev_hash: bytes | bytearray = GENESIS_HASH if head_hash is None else bytes(head_hash)
    recorded_at = utc_now()  # one clock reading for the batch: it commits as one
    sha256 = hashlib.sha256
    dumps = orjson.dumps
    # orjson writes the chain body straight away when every field is an exact str/int/None (what
    # chain_body would check item by item): NewEvent makes its texts, times and correlation ids so,
    # and the stream id is checked here; the event id, type and schema version are checked per event.
    plain_stream = type(stream_id) is str
    statements: list[tuple[str, list[Any]]] = []
    # SQLite before 3.32 (still some distributions' library) binds at most 999 parameters a statement
    rows = min(_MAX_ROWS, (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - _HEAD_PARAMS) // _ROW_PARAMS)
    for done in range(0, len(events), rows):
        chunk = events[done : done + rows]
        params: list[Any] = [stream_id, recorded_at, current + 1 + done, prev_hash]
        if shared is not None:
            params += shared
        version = current + done
        for event in chunk:
            version += 1
            fields = (
                event.event_id,
                stream_id,
                version,
                event.type,
                event.schema_version,
                event.data_json,
                event.metadata_json,
                event.correlation_id,
                event.causation_id,
                event.occurred_at,
            )
            if plain_stream and type(fields[0]) is str and type(fields[3]) is str and type(fields[4]) is int:
                try:  # a plain try: contextlib.suppress costs as much as the dumps
                    body = dumps(fields)
                except orjson.JSONEncodeError:  # a lone surrogate, an int beyond 64 bits
                    body = chain_body(fields)
            else:
                body = chain_body(fields)
            # bytearray: sqlite3 binds it as is, where bytes would go through its adapters
            prev_hash = bytearray(sha256(prev_hash + body).digest())
            if shared is not None:
                params += (event.event_id, event.data_json, event.occurred_at, prev_hash)
            else:
                params += (
                    event.event_id,
                    event.type,
                    event.schema_version,
                    event.data_json,
                    event.metadata_json,
                    event.occurred_at,
                    prev_hash,
                )
            if causes:
                params += (event.correlation_id, event.causation_id)
        statements.append((_insert_sql(len(chunk), causes, shared is not None), params))
    return tuple(statements)


def _write(conn: sqlite3.Connection, statements: _Statements, count: int) -> list[int]:
    """Run a prepared batch's INSERTs; the positions of its ``count`` events."""
    try:
        for sql, params in statements:
            cursor = conn.execute(sql, params)
    except sqlite3.IntegrityError as e:
        raise _DuplicateIdError(e) from e
    # Under the write lock with AUTOINCREMENT, one batch takes consecutive ids.
    last = cursor.lastrowid
    assert last is not None
    return list(range(last - count + 1, last + 1))


def _recorded_or_raise(
    conn: sqlite3.Connection, stream_id: str, events: Sequence[NewEvent], duplicate: _DuplicateIdError
) -> list[int]:
    """After a batch's write hit an event id already stored: the positions of its earlier recording,
    or the error when the ids are there but not as this very batch."""
    original = _already_recorded(conn, stream_id, events)
    if original is None:
        raise duplicate.error from None
    return original


class Transaction:
    """An open ``BEGIN IMMEDIATE`` transaction, handed out by ``EventLog.write_transaction``.

    Projections write their rows and checkpoint through it; the job runtime can append events and
    touch its own tables (leases) in one atomic step.
    """

    def __init__(self, conn: sqlite3.Connection, *, durable: bool = True) -> None:
        self._conn = conn
        self._open = True
        self.durable = durable

    def _require_open(self) -> sqlite3.Connection:
        if not self._open:
            raise EventLogError("this transaction has ended; open a new one with log.write_transaction()")
        return self._conn

    def execute(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Run one statement in the transaction and return its rows as dicts."""
        conn = self._require_open()
        with _translated():
            return [dict(row) for row in conn.execute(sql, params).fetchall()]

    def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        """Run one statement for many parameter rows; return the number of changed rows."""
        conn = self._require_open()
        with _translated():
            return conn.executemany(sql, rows).rowcount

    def append(self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None) -> list[int]:
        """Append a batch inside this transaction (same contract as ``EventLog.append``).

        The batch runs in a savepoint, so a refused batch leaves the rest of the transaction intact.
        """
        conn = self._require_open()
        events = list(events)  # read twice when a retry has to be recognised
        if not self.durable and holds_outcome(e.type for e in events):
            outcomes = ", ".join(sorted({e.type for e in events} & OUTCOME_TYPES))
            raise EventLogError(
                f"{outcomes} must be synced to disk: append it in a durable transaction "
                "(log.write_transaction(), or log.append, which decides by itself)"
            )
        with _translated("append"):
            batch = _prepare(conn, stream_id, events, expected_version)
            if not isinstance(batch, tuple):  # positions: empty, or a retried batch already recorded
                return batch
            # One statement is atomic by itself (SQLite backs out a statement that fails and keeps the
            # transaction): only a batch of several needs a savepoint, to take back its earlier ones.
            savepoint = len(batch) > 1
            if savepoint:
                conn.execute("SAVEPOINT append_batch")
            try:
                try:
                    positions = _write(conn, batch, len(events))
                except _DuplicateIdError as duplicate:
                    if savepoint:
                        conn.execute("ROLLBACK TO append_batch")
                    positions = _recorded_or_raise(conn, stream_id, events, duplicate)
            except BaseException:
                if savepoint and conn.in_transaction:  # SQLITE_FULL or an I/O error may have rolled it all back
                    conn.execute("ROLLBACK TO append_batch")
                    conn.execute("RELEASE append_batch")
                raise
            if savepoint:
                conn.execute("RELEASE append_batch")
            return positions

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events with position > ``after``, as this transaction sees them."""
        conn = self._require_open()
        with _translated():
            return _read_all(conn, after, limit)

    def read_rows(
        self, *, after: int = 0, limit: int | None = None, most_bytes: int | None = None
    ) -> tuple[list[EventRow], bytes | None]:
        """Like ``read_all``, but only the columns a projection folds over, data as its stored text.

        Returns the rows and the hash of the last one (what a checkpoint records), or None when
        there are no rows. A rebuild reads every event; skipping metadata, ids, hashes and the
        JSON parse of what it does not use is most of what makes it fast. With ``most_bytes`` the
        read stops at the row whose data brings their total length over it (a caller that must not
        take long tells a long fold by the size, without reading the rest).
        """
        conn = self._require_open()
        with _translated():
            return _read_rows(conn, after, limit, most_bytes)

    def read_stream(self, stream_id: str, *, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events of one stream with version > ``after``, as this transaction sees them."""
        conn = self._require_open()
        with _translated():
            return _read_stream(conn, stream_id, after, limit)

    def stream_version(self, stream_id: str) -> int:
        """Current version of a stream inside this transaction (0 if it has no events)."""
        conn = self._require_open()
        with _translated():
            return _stream_version(conn, stream_id)


class EventLog:
    """One connection to the event log file; safe to share between threads (calls are serialised)."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, readonly: bool, sync_every_commit: bool = False
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._readonly = readonly
        self._lock = threading.RLock()
        self._sync_every_commit = sync_every_commit
        self._synchronous = "FULL"  # as _configure leaves the connection

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        readonly: bool = False,
        tracer: Callable[[str], None] | None = None,
        sync_every_commit: bool = False,
    ) -> EventLog:
        """Open (creating and migrating if needed) the log and check that it can be trusted.

        ``readonly=True`` is for audits: no migration and no trigger check, so ``verify()`` can
        still inspect a file that normal opening refuses; every write fails. ``tracer`` sees each
        SQL statement (debugging, tests). ``sync_every_commit`` syncs every transaction to disk,
        not only the durable ones (benchmarks comparing stores at the same durability).

        Raises:
            LogIntegrityError: a guard trigger is missing, quick_check fails, or the schema is newer
                than this code.
            StoreBusyError: another process held the lock during migration past ``busy_timeout``.
        """
        path = Path(path)
        in_memory = str(path) == ":memory:"
        if not readonly and not in_memory:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Owner-only from its creation: SQLite gives the -wal and -shm files the database file's mode.
            # Only ever on a file that does not exist yet: closing *any* descriptor of an open database
            # drops every POSIX lock this process holds on it, including those of its other connections,
            # and another process could then write beside them (a malformed file).
            with suppress(FileExistsError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        with _translated(f"opening {path}"):
            if readonly:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(
                    uri, uri=True, isolation_level=None, timeout=busy_timeout, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout, check_same_thread=False)
        try:
            with _translated(f"opening {path}"):
                conn.row_factory = sqlite3.Row
                if tracer is not None:
                    conn.set_trace_callback(tracer)
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                if not readonly:
                    _configure(conn, path, in_memory=in_memory)
                    _migrate(conn, path)
                    _check_triggers(conn, path)
                _quick_check(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, readonly=readonly, sync_every_commit=sync_every_commit)

    def sibling(self, *, busy_timeout: float, autocheckpoint: bool = True) -> EventLog:
        """A second connection to this log's file, configured alike but not checked again (this one was).

        For a caller that must never wait: with ``busy_timeout=0`` a write transaction that cannot
        have the file's lock at once raises ``StoreBusyError`` instead, and with ``autocheckpoint=False``
        no commit copies the WAL into the database (a synced write of up to megabytes) on the way:
        other connections do that. A connection of its own, since the busy timeout is a connection's.

        Raises:
            EventLogError: the file cannot be opened (this log is in memory, read-only or closed).
        """
        if self._readonly or str(self._path) == ":memory:":
            raise EventLogError(f"{self._path}: a sibling connection is for a writable log file")
        self._require_conn()
        with _translated(f"opening {self._path}"):
            conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=busy_timeout, check_same_thread=False)
        try:
            with _translated(f"opening {self._path}"):
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                _configure(conn, self._path, in_memory=False)
                if not autocheckpoint:
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        return EventLog(conn, self._path, readonly=False, sync_every_commit=self._sync_every_commit)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the connection; calling it twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise EventLogError(f"the event log {self._path} is closed")
        return self._conn

    @contextmanager
    def write_transaction(self, *, durable: bool = True) -> Iterator[Transaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` if the block raises.

        IMMEDIATE takes the write lock up front, so a read-then-write inside never fails with a
        stale snapshot. Keep the block short: no network I/O inside.

        ``durable`` (the default) syncs the commit to disk (``synchronous=FULL``): it survives a
        power cut. ``durable=False`` commits with ``NORMAL``, a write without the sync: it survives
        the process being killed, and after an OS crash or power cut the log may have lost commits since the last
        durable one, never more (WAL keeps a prefix: no gap, no broken chain), and the next durable
        commit makes every earlier one durable too. A job's outcome (``OUTCOME_TYPES``) can only be
        appended durably.

        Raises:
            StoreBusyError: the lock could not be taken within the busy timeout.
            EventLogError: a transaction is already open on this log (nest via the ``Transaction``).
        """
        with self._lock:
            conn = self._require_conn()
            if conn.in_transaction:
                raise EventLogError(
                    "a write transaction is already open on this log; use its Transaction (tx.append, tx.execute)"
                )
            durable = durable or self._sync_every_commit
            synchronous = "FULL" if durable else "NORMAL"
            with _translated("begin write transaction"):
                if synchronous != self._synchronous:  # read at COMMIT from the setting before BEGIN
                    conn.execute(f"PRAGMA synchronous = {synchronous}")
                    self._synchronous = synchronous
                conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(conn, durable=durable)
            try:
                yield tx
            except BaseException:
                tx._open = False
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            tx._open = False
            try:
                with _translated("commit"):
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def append(self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None) -> list[int]:
        """Append a batch to a stream atomically and return the global positions of its events.

        ``expected_version`` is the stream version the caller decided on (0 for a new stream);
        ``None`` appends at the end without a check. Idempotent on ``event_id``: a batch already
        recorded with the same stream, type, schema version and data returns its original
        positions and writes nothing (safe retry after "commit happened, response lost"). A batch
        with a job's outcome is synced to disk, any other is not (see ``write_transaction``).

        Raises:
            ConcurrencyError: the stream is not at ``expected_version``.
            IdempotencyConflictError: an event id is already used for another payload.
            UnknownEventTypeError: a type is not in the vocabulary.
            StoreBusyError: the write lock was not free within the busy timeout.
        """
        events = list(events)
        with self.write_transaction(durable=holds_outcome(e.type for e in events)) as tx:
            return tx.append(stream_id, events, expected_version=expected_version)

    def read_stream(self, stream_id: str, *, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events of one stream with stream version > ``after``, in version order."""
        with self._lock, _translated("read_stream"):
            return _read_stream(self._require_conn(), stream_id, after, limit)

    def read_all(self, *, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events with global position > ``after``, in commit order (gap-free)."""
        with self._lock, _translated("read_all"):
            return _read_all(self._require_conn(), after, limit)

    def stream_version(self, stream_id: str) -> int:
        """Current version of a stream: the number of its events, 0 if none."""
        with self._lock, _translated("stream_version"):
            return _stream_version(self._require_conn(), stream_id)

    def head(self) -> tuple[int, str]:
        """The last position and its hash in hex; ``(0, "00" * 32)`` for an empty log (an anchor)."""
        with self._lock, _translated("head"):
            position, digest = _head(self._require_conn())
        return position, digest.hex()

    def data_version(self) -> int:
        """``PRAGMA data_version``: changes when *another* connection commits (cheap follower poll)."""
        with self._lock, _translated("data_version"):
            return int(self._require_conn().execute("PRAGMA data_version").fetchone()[0])

    def commit_stamp(self) -> tuple[int, int]:
        """``(PRAGMA data_version, changes made through this connection)``: O(1), no table read.

        Two equal stamps mean nothing was committed to the file in between, by this connection or
        any other, so whatever was derived from it is still current.
        """
        with self._lock, _translated("commit_stamp"):
            conn = self._require_conn()
            return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Run a read query and return all rows as dicts; no transaction stays open afterwards."""
        with self._lock, _translated("query"):
            return [dict(row) for row in self._require_conn().execute(sql, params).fetchall()]

    def verify(self, *, anchor: tuple[int, str] | None = None, after: int = 0, until: int | None = None) -> ChainReport:
        """Recompute the whole hash chain and report the first position that does not fit.

        ``anchor`` is a (position, hex hash) pair recorded elsewhere (a manifest), which also
        catches a truncated or wholesale rewritten log. ``after`` and ``until`` check only the
        events in that range, linked to the hash stored at ``after``: for a caller that verified
        up to there before, or that checks the few events it shows. Reads in batches.
        """
        start = GENESIS_HASH
        if after:
            stored = self.hash_at(after)
            if stored is None:
                return ChainReport(False, 0, after, f"position {after} is missing: the log was truncated")
            start = bytes.fromhex(stored)
        return verify_rows(self._chain_rows(after, until), anchor=anchor, start_hash=start)

    def _chain_rows(self, after: int = 0, until: int | None = None) -> Iterator[ChainRow]:
        last = sys.maxsize if until is None else until  # a plain range: SQLite walks only the rows in it
        while True:
            with self._lock, _translated("verify"):
                rows = (
                    self._require_conn()
                    .execute(
                        "SELECT id, event_id, stream_id, stream_version, type, schema_version, data, "
                        "metadata, correlation_id, causation_id, occurred_at, prev_hash, hash, "
                        "json_valid(data) AND json_valid(metadata) AS valid_json FROM events "
                        "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                        (after, last, _VERIFY_BATCH),
                    )
                    .fetchall()
                )
            for row in rows:
                yield ChainRow(
                    position=row["id"],
                    fields=ChainFields(
                        event_id=row["event_id"],
                        stream_id=row["stream_id"],
                        stream_version=row["stream_version"],
                        type=row["type"],
                        schema_version=row["schema_version"],
                        data=row["data"],
                        metadata=row["metadata"],
                        correlation_id=row["correlation_id"],
                        causation_id=row["causation_id"],
                        occurred_at=row["occurred_at"],
                    ),
                    prev_hash=bytes(row["prev_hash"]),
                    hash=bytes(row["hash"]),
                    valid_json=bool(row["valid_json"]),
                )
            if len(rows) < _VERIFY_BATCH:
                return
            after = rows[-1]["id"]

    # -- audit and housekeeping -------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on this connection (a read left open would pin the WAL)."""
        with self._lock:
            return self._require_conn().in_transaction

    def hash_at(self, position: int) -> str | None:
        """The hex hash stored at a position, or None if the log has no such position (anchor checks)."""
        with self._lock, _translated("hash_at"):
            row = self._require_conn().execute("SELECT hash FROM events WHERE id = ?", (position,)).fetchone()
        return None if row is None else bytes(row[0]).hex()

    def check_file(self) -> FileReport:
        """Run the full ``PRAGMA integrity_check`` (index contents too, unlike quick_check) and list
        the missing guard triggers, AUTOINCREMENT's high-water mark and the projection checkpoints.

        Works on a read-only log, which is how ``sfbackup verify`` audits a file normal opening refuses.
        """
        with self._lock, _translated("check_file"):
            conn = self._require_conn()
            integrity = tuple(str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall())
            schema = {(row[0], row[1]) for row in conn.execute("SELECT type, name FROM sqlite_master").fetchall()}
            missing = tuple(name for name in REQUIRED_TRIGGERS if ("trigger", name) not in schema)
            issued = 0
            if ("table", "sqlite_sequence") in schema:
                row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
                issued = 0 if row is None else int(row[0])
            checkpoints: tuple[Anchor, ...] = ()
            if ("table", "projection_checkpoints") in schema:
                rows = conn.execute(
                    "SELECT projection, position, last_hash FROM projection_checkpoints "
                    "WHERE position > 0 ORDER BY projection"
                ).fetchall()
                checkpoints = tuple(
                    Anchor(
                        f"projection checkpoint {row[0]!r}",
                        int(row[1]),
                        "" if row[2] is None else bytes(row[2]).hex(),
                    )
                    for row in rows
                )
        return FileReport(integrity, missing, issued, checkpoints)

    def checkpoint(self, *, min_wal_bytes: int = WAL_TRUNCATE_BYTES) -> WalCheckpoint:
        """Copy the WAL into the database and truncate it to 0 bytes once it exceeds ``min_wal_bytes``.

        Housekeeping for the end of a job: SQLite's automatic checkpoints keep the WAL near 4 MB as
        long as no reader holds a snapshot, but cannot shrink a file that grew while one did.
        TRUNCATE waits up to the busy timeout for readers and writers, then reports ``busy``
        instead of raising.

        Raises:
            EventLogError: the log is read-only, or a transaction is open on this connection.
        """
        wal = Path(f"{self._path}-wal")
        with self._lock:
            conn = self._require_conn()
            if self._readonly:
                raise EventLogError(f"{self._path} is open read-only; checkpoint it from a normal EventLog.open()")
            if conn.in_transaction:
                raise EventLogError("checkpoint cannot run inside a transaction; call it after the transaction ends")
            before = wal.stat().st_size if wal.exists() else 0
            if before <= min_wal_bytes:
                return WalCheckpoint(False, False, before, before)
            with _translated("checkpoint"):
                busy = int(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
            after = wal.stat().st_size if wal.exists() else 0
        return WalCheckpoint(True, bool(busy), before, after)


def _configure(conn: sqlite3.Connection, path: Path, *, in_memory: bool) -> None:
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal" and not in_memory:
        raise LogIntegrityError(
            f"{path}: could not switch to WAL (journal_mode is {mode}); keep the log on a local disk"
        )
    # FULL until a transaction asks for less: the user acts on "backup completed"; that event must
    # survive a power cut (EventLog.write_transaction decides per transaction).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    # Statement and savepoint journals in memory: every append runs in a savepoint, and its
    # journal spilled to a temporary file past 64 KiB (write and read system calls for each batch,
    # about a tenth of a batched append's time). They only ever serve ROLLBACK TO within a live
    # transaction; crash recovery is the WAL's, so durability does not change.
    conn.execute("PRAGMA temp_store = MEMORY")
    if sys.platform == "darwin":
        conn.execute("PRAGMA fullfsync = ON")
        conn.execute("PRAGMA checkpoint_fullfsync = ON")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply pending migrations, each with its user_version bump in one IMMEDIATE transaction."""
    if _user_version(conn) > SCHEMA_VERSION:
        raise LogIntegrityError(
            f"{path} has schema version {_user_version(conn)}, newer than this code's {SCHEMA_VERSION}; "
            "upgrade sfbackup"
        )
    for number, migration in enumerate(MIGRATIONS, start=1):
        if _user_version(conn) >= number:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if _user_version(conn) < number:
                migration(conn.execute)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _check_triggers(conn: sqlite3.Connection, path: Path) -> None:
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    missing = [name for name in REQUIRED_TRIGGERS if name not in present]
    if missing:
        raise LogIntegrityError(
            f"refusing to open {path}: guard trigger(s) {', '.join(missing)} missing, so the database no "
            "longer refuses edits to history. Inspect it with EventLog.open(path, readonly=True).verify() "
            "and restore the log from a backup"
        )


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    result = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if result != ["ok"]:
        raise LogIntegrityError(f"refusing to open {path}: PRAGMA quick_check reports {'; '.join(result[:5])}")
