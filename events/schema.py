"""The log's schema as an ordered list of named migrations, tracked by ``PRAGMA user_version``.

Each migration is a small function that issues DDL through ``execute``; the runner in
``events/log.py`` applies the pending ones, each in its own ``BEGIN IMMEDIATE`` transaction together
with the ``user_version`` bump, so running it twice (or from two processes at once) is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Rows(Protocol):
    """What a statement run through ``Execute`` gives back (an ``sqlite3.Cursor``)."""

    def fetchone(self) -> Any: ...


Execute = Callable[[str], Rows]

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,   -- global position: commit order, gap-free, never reused
  event_id       TEXT    NOT NULL UNIQUE,             -- producer-generated UUIDv7: idempotency key
  stream_id      TEXT    NOT NULL CHECK (length(stream_id) BETWEEN 1 AND 200),
  stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
  type           TEXT    NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
  schema_version INTEGER NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
  data           TEXT    NOT NULL CHECK (json_valid(data)),
  metadata       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  correlation_id TEXT,
  causation_id   TEXT,
  occurred_at    TEXT    NOT NULL,                     -- producer clock, informational only
  recorded_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
  hash           BLOB    NOT NULL CHECK (length(hash) = 32),  -- no index: random keys halve batch throughput
  UNIQUE (stream_id, stream_version)
) STRICT
"""

TRIGGERS_DDL = {
    "events_no_update": """
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
""",
    "events_no_delete": """
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
""",
    "events_version_contiguous": """
CREATE TRIGGER IF NOT EXISTS events_version_contiguous BEFORE INSERT ON events
WHEN NEW.stream_version <> 1 + COALESCE(
  (SELECT MAX(stream_version) FROM events WHERE stream_id = NEW.stream_id), 0)
BEGIN SELECT RAISE(ABORT, 'wrong expected version'); END
""",
    "events_chain_link": """
CREATE TRIGGER IF NOT EXISTS events_chain_link BEFORE INSERT ON events
WHEN NEW.prev_hash IS NOT COALESCE(
  (SELECT hash FROM events ORDER BY id DESC LIMIT 1), zeroblob(32))
BEGIN SELECT RAISE(ABORT, 'hash chain broken'); END
""",
}

CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS projection_checkpoints (
  projection  TEXT    PRIMARY KEY,
  version     INTEGER NOT NULL CHECK (version >= 1),   -- projection code version; bump => rebuild
  position    INTEGER NOT NULL CHECK (position >= 0),  -- last applied events.id
  last_hash   BLOB    CHECK (last_hash IS NULL OR length(last_hash) = 32),
  updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT
"""

CHECKPOINT_TRIGGER_DDL = """
CREATE TRIGGER IF NOT EXISTS checkpoint_monotonic BEFORE UPDATE OF position ON projection_checkpoints
WHEN NEW.position < OLD.position AND NEW.version = OLD.version
BEGIN SELECT RAISE(ABORT, 'checkpoint must not move backwards'); END
"""


def m001_create_events(execute: Execute) -> None:
    """The append-only events table, its correlation index and its four guard triggers (m003 drops two)."""
    execute(EVENTS_DDL)
    execute("CREATE INDEX IF NOT EXISTS events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL")
    for ddl in TRIGGERS_DDL.values():
        execute(ddl)


def m002_create_projection_checkpoints(execute: Execute) -> None:
    """Checkpoints that projections advance in the same transaction as their rows."""
    execute(CHECKPOINTS_DDL)
    execute(CHECKPOINT_TRIGGER_DDL)


def m003_drop_insert_guards(execute: Execute) -> None:
    """The two INSERT guards go: ``EventLog`` checks the expected version and links each event to
    the head inside its ``BEGIN IMMEDIATE`` transaction, and ``verify`` finds a row that does
    neither (a writer other than ``EventLog``). The triggers repeated both checks for every row
    and made SQLite copy each row of a batch through a temporary table: a fifth of an append's CPU.
    UPDATE and DELETE stay refused by the database."""
    execute("DROP TRIGGER IF EXISTS events_version_contiguous")
    execute("DROP TRIGGER IF EXISTS events_chain_link")


# The exact text m001 wrote for the CHECKs m004 takes out of the table's definition.
TEXT_CHECKS = (
    " CHECK (length(stream_id) BETWEEN 1 AND 200)",
    " CHECK (length(type) BETWEEN 1 AND 100)",
    " CHECK (json_valid(data))",
    " CHECK (json_valid(metadata))",
)


def _without_text_checks(sql: str) -> str:
    """The SQL expression that removes every ``TEXT_CHECKS`` item from the text ``sql``."""
    for check in TEXT_CHECKS:
        sql = f"replace({sql}, '{check}', '')"
    return sql


def m004_drop_text_checks(execute: Execute) -> None:
    """The four CHECKs that read a column's text go: ``json_valid`` of data and metadata and the
    character counts of stream id and type. SQLite 3.40 parses each JSON text into a node array
    to test it, and before counting characters copies each bound text to give it a terminating
    NUL: 8.3k machine instructions an event, a third of an append's SQLite work. ``EventLog``
    checks the stream id's length and the type (against the vocabulary) before it writes, and
    stores only the canonical JSON it made; ``verify`` tests every row for all four (a row
    written around ``EventLog``). The CHECKs on versions and hash lengths stay (no text read).

    Removing a CHECK does not touch stored rows, so the table is not rebuilt: the procedure SQLite
    documents for it (lang_altertable.html, "making other kinds of table schema changes") edits
    the table's text in ``sqlite_master`` and bumps the schema version, inside this migration's
    ``BEGIN IMMEDIATE``, so other connections reload the schema. Positions, ``sqlite_sequence``,
    indexes and triggers stay as they are. Where SQLite refuses schema edits
    (``SQLITE_DBCONFIG_DEFENSIVE``) the CHECKs stay: the log is as sound, only slower.
    """
    execute("PRAGMA writable_schema = ON")
    try:
        if not execute("PRAGMA writable_schema").fetchone()[0]:
            return  # defensive mode ignored the switch
        table = "type = 'table' AND name = 'events'"
        if not execute(f"SELECT {_without_text_checks('sql')} <> sql FROM sqlite_master WHERE {table}").fetchone()[0]:
            return
        version = int(execute("PRAGMA schema_version").fetchone()[0])
        execute(f"UPDATE sqlite_master SET sql = {_without_text_checks('sql')} WHERE {table}")
        execute(f"PRAGMA schema_version = {version + 1}")
    finally:
        execute("PRAGMA writable_schema = RESET")  # off, and this connection rereads the schema


MIGRATIONS: tuple[Callable[[Execute], None], ...] = (
    m001_create_events,
    m002_create_projection_checkpoints,
    m003_drop_insert_guards,
    m004_drop_text_checks,
)

SCHEMA_VERSION = len(MIGRATIONS)

# Every guard the log relies on; opening a file where one is missing is refused.
REQUIRED_TRIGGERS: tuple[str, ...] = ("events_no_update", "events_no_delete", "checkpoint_monotonic")
