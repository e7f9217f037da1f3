"""Historical databases (one per ``user_version``, recorded by fixtures/databases/record.py) migrate.

Each is migrated to the current schema twice and from two processes at once; afterwards the
guard triggers are there, the chain verifies and the stored events are byte for byte the same.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from events import EventLog, NewEvent
from events.schema import REQUIRED_TRIGGERS, SCHEMA_VERSION, TEXT_CHECKS, m004_drop_text_checks
from events.streamfile import read_lines
from projections import ProjectionStore, replay

ROOT = Path(__file__).resolve().parents[2]
DUMPS = ROOT / "fixtures" / "databases"
CORPUS_EVENTS = ROOT / "fixtures" / "corpus" / "v1_every_type.jsonl"

# A changed dump fails here: history is recorded once. Record a new user_version instead.
PINNED = {
    "user_version_1.sql": "c964e6cef6714af6bb0b73926c49e19e09c0565e739b641228a685916fdc5938",
    "user_version_2.sql": "e0045c25143f16f4d05972300bed77390b920a9d468b71c131e72657f4794d2c",
    "user_version_3.sql": "a97abf4d6b943b1c2e6a7b95e0a45db0a30ec2b141225ccd3b88641c976bf177",
    "user_version_4.sql": "0161dc883801e08fd355210765c4c644d3a562b9e8f50cc37899bfb3cca9975e",
}
DUMP_PATHS = [DUMPS / name for name in PINNED]

MIGRATE = r"""
import sys
from events import EventLog, NewEvent
print("ready", flush=True)
sys.stdin.readline()
with EventLog.open(sys.argv[1], busy_timeout=30) as log:
    print(log.query("PRAGMA user_version")[0]["user_version"], flush=True)
"""


def load(dump: Path, db: Path) -> int:
    """Build the database a dump describes, in WAL mode as logs are; return its user_version."""
    conn = sqlite3.connect(db)
    conn.executescript(dump.read_text(encoding="utf-8"))
    conn.execute("PRAGMA journal_mode = WAL")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


def schema(db: Path) -> tuple[int, list[tuple[str, str, str]]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        return int(conn.execute("PRAGMA user_version").fetchone()[0]), rows
    finally:
        conn.close()


def stored_events(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    finally:
        conn.close()


def sequence(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall()
    finally:
        conn.close()


def check_migrated(db: Path, before: list[tuple[object, ...]]) -> None:
    version, rows = schema(db)
    assert version == SCHEMA_VERSION
    assert set(REQUIRED_TRIGGERS) <= {name for kind, name, _ in rows if kind == "trigger"}
    (table,) = [sql for kind, name, sql in rows if (kind, name) == ("table", "events")]
    assert "json_valid" not in table and "length(stream_id)" not in table and "length(type)" not in table
    assert "CHECK (stream_version >= 1)" in table and "CHECK (length(hash) = 32)" in table
    assert stored_events(db) == before  # migrations never rewrite an event
    with EventLog.open(db) as log:
        report = log.verify()
    assert report.ok and report.checked == 16


def test_every_user_version_before_the_current_one_has_a_recorded_database() -> None:
    assert sorted(p.name for p in DUMPS.glob("*.sql")) == sorted(PINNED)
    assert {int(name.removeprefix("user_version_").removesuffix(".sql")) for name in PINNED} >= set(
        range(1, SCHEMA_VERSION + 1)
    )


@pytest.mark.parametrize("dump", DUMP_PATHS, ids=lambda p: p.stem)
def test_recorded_databases_are_unchanged(dump: Path) -> None:
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == PINNED[dump.name]


@pytest.mark.parametrize("dump", DUMP_PATHS, ids=lambda p: p.stem)
def test_a_historical_database_migrates_to_the_current_schema_and_again_idempotently(
    dump: Path, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    recorded_version = load(dump, db)
    assert recorded_version == int(dump.stem.removeprefix("user_version_"))
    before = stored_events(db)
    EventLog.open(db).close()
    check_migrated(db, before)
    first = schema(db)
    EventLog.open(db).close()
    assert schema(db) == first
    check_migrated(db, before)


@pytest.mark.parametrize("dump", DUMP_PATHS, ids=lambda p: p.stem)
def test_two_processes_migrate_a_historical_database_at_once(dump: Path, tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    load(dump, db)
    before = stored_events(db)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, str(db)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # both are past their imports: release them together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == [str(SCHEMA_VERSION)] * 2
    check_migrated(db, before)
    alone = tmp_path / "alone.db"
    load(dump, alone)
    EventLog.open(alone).close()
    assert schema(db) == schema(alone)


def test_the_store_catches_up_on_the_recorded_projection_tables(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    load(DUMPS / "user_version_2.sql", db)
    lines = CORPUS_EVENTS.read_text(encoding="utf-8").splitlines()
    with EventLog.open(db) as log:
        store = ProjectionStore(log)
        jobs = {j.job_id: j.to_dict() for j in store.jobs(limit=100)}
        catalog = [b.to_dict() for b in reversed(store.backups(limit=100))]
    expected = replay(lines)
    assert jobs == expected["jobs"] and catalog == expected["catalog"]
    assert len(list(read_lines(lines))) == 16


@pytest.mark.parametrize("dump", [DUMPS / "user_version_3.sql", DUMPS / "user_version_4.sql"], ids=lambda p: p.stem)
def test_migration_4_edits_only_the_table_text(dump: Path, tmp_path: Path) -> None:
    """Dropping the json_valid CHECKs leaves every other schema row (triggers, indexes) and the
    high-water mark of positions as they were; the next position follows the old ones. (The
    migration is the last one, so from user_version 3 it is all that runs.)"""
    db = tmp_path / "events.db"
    load(dump, db)
    version, rows = schema(db)
    seq = sequence(db)
    EventLog.open(db).close()
    _, after = schema(db)
    assert [r for r in after if r[:2] != ("table", "events")] == [r for r in rows if r[:2] != ("table", "events")]
    (old,) = [sql for kind, name, sql in rows if (kind, name) == ("table", "events")]
    (new,) = [sql for kind, name, sql in after if (kind, name) == ("table", "events")]
    expected = old
    for check in TEXT_CHECKS if version < 4 else ():
        assert check in expected
        expected = expected.replace(check, "")
    assert new == expected
    assert sequence(db) == seq == [("events", 16)]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    with EventLog.open(db) as log:
        assert log.append("job-new", [NewEvent("job.progress", {"percent": 1})], expected_version=0) == [17]
        assert log.verify().ok


def test_migration_4_leaves_the_checks_where_sqlite_refuses_schema_edits(tmp_path: Path) -> None:
    """SQLITE_DBCONFIG_DEFENSIVE makes ``PRAGMA writable_schema = ON`` a no-op (Python 3.11 cannot
    set it, so the pragma's answer is replaced here): the migration then changes nothing."""
    db = tmp_path / "events.db"
    load(DUMPS / "user_version_3.sql", db)
    _, before = schema(db)
    conn = sqlite3.connect(db, isolation_level=None)
    seen: list[str] = []

    def defensive(sql: str) -> sqlite3.Cursor:
        seen.append(sql)
        if sql == "PRAGMA writable_schema":
            return conn.execute("SELECT 0")
        return conn.execute(sql)

    try:
        conn.execute("BEGIN IMMEDIATE")
        m004_drop_text_checks(defensive)
        conn.execute("COMMIT")
        assert not any(sql.startswith("UPDATE") for sql in seen)
        assert conn.execute("PRAGMA writable_schema").fetchone() == (0,)
    finally:
        conn.close()
    assert schema(db)[1] == before
    raw = sqlite3.connect(db)
    insert = (
        "INSERT INTO events (event_id, stream_id, stream_version, type, data, occurred_at, prev_hash, hash) "
        "VALUES ('x', ?, 1, 't', ?, 't', zeroblob(32), zeroblob(32))"
    )
    try:
        with pytest.raises(sqlite3.IntegrityError, match="json_valid"):
            raw.execute(insert, ("s", "{not json"))
        with pytest.raises(sqlite3.IntegrityError, match="length"):
            raw.execute(insert, ("", "{}"))
    finally:
        raw.close()
