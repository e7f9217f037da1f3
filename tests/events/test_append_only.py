import re
import sqlite3
from pathlib import Path

import pytest

from events import EventLog, LogIntegrityError, NewEvent
from events.schema import REQUIRED_TRIGGERS

ROOT = Path(__file__).resolve().parents[2]


def _fill(db_path: Path, n: int = 3) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-a", [NewEvent("job.progress", {"percent": i}) for i in range(n)], expected_version=0)


def test_update_of_an_event_is_refused_by_the_database(db_path: Path) -> None:
    _fill(db_path)
    raw = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE events SET data = '{}' WHERE id = 1")
    finally:
        raw.close()


def test_delete_of_an_event_is_refused_by_the_database(db_path: Path) -> None:
    _fill(db_path)
    raw = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events WHERE id = 3")
    finally:
        raw.close()


def _raw_insert(db_path: Path, sql: str) -> None:
    raw = sqlite3.connect(db_path)
    try:
        raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


def test_an_insert_with_a_version_gap_by_another_writer_is_found_by_verify(db_path: Path) -> None:
    """EventLog checks versions in its transaction; a row written around it is named by verify."""
    _fill(db_path)
    with EventLog.open(db_path) as log:
        head = log.head()
    # a correct link and hash, so that the version is the only thing wrong
    from events.chain import ChainFields, event_hash

    fields = ChainFields("x", "job-a", 9, "job.progress", 1, "{}", "{}", None, None, "now")
    digest = event_hash(bytes.fromhex(head[1]), fields)
    _raw_insert(
        db_path,
        "INSERT INTO events (event_id, stream_id, stream_version, type, data, occurred_at, prev_hash, hash) "
        f"VALUES ('x', 'job-a', 9, 'job.progress', '{{}}', 'now', x'{head[1]}', x'{digest.hex()}')",
    )
    with EventLog.open(db_path) as log:
        report = log.verify()
    assert (report.ok, report.first_bad_position, report.problem) == (
        False,
        4,
        "stream job-a goes from version 3 to 9",
    )


def test_an_insert_that_does_not_link_to_the_head_is_found_by_verify(db_path: Path) -> None:
    _fill(db_path)
    _raw_insert(
        db_path,
        "INSERT INTO events (event_id, stream_id, stream_version, type, data, occurred_at, prev_hash, hash) "
        "VALUES ('x', 'job-b', 1, 'job.progress', '{}', 'now', zeroblob(32), zeroblob(32))",
    )
    with EventLog.open(db_path) as log:
        report = log.verify()
    assert (report.ok, report.first_bad_position) == (False, 4)
    assert report.problem == "prev_hash does not match the previous event's hash"


def test_checkpoint_cannot_move_backwards_within_a_version(db_path: Path) -> None:
    _fill(db_path)
    raw = sqlite3.connect(db_path)
    try:
        raw.execute("INSERT INTO projection_checkpoints (projection, version, position) VALUES ('p', 1, 3)")
        with pytest.raises(sqlite3.IntegrityError, match="backwards"):
            raw.execute("UPDATE projection_checkpoints SET position = 2 WHERE projection = 'p'")
        raw.execute("UPDATE projection_checkpoints SET position = 0, version = 2 WHERE projection = 'p'")
        raw.commit()
    finally:
        raw.close()


@pytest.mark.parametrize("trigger", REQUIRED_TRIGGERS)
def test_opening_a_log_whose_trigger_was_dropped_is_refused_naming_it(db_path: Path, trigger: str) -> None:
    _fill(db_path)
    raw = sqlite3.connect(db_path)
    raw.execute(f"DROP TRIGGER {trigger}")
    raw.commit()
    raw.close()
    with pytest.raises(LogIntegrityError, match=trigger):
        EventLog.open(db_path)


def test_opening_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(LogIntegrityError, match="not an SQLite database"):
        EventLog.open(path)


def test_opening_a_log_from_a_newer_schema_is_refused(db_path: Path) -> None:
    _fill(db_path)
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(LogIntegrityError, match="newer"):
        EventLog.open(db_path)


def test_no_code_uses_insert_or_replace_on_events() -> None:
    pattern = re.compile(r"(INSERT\s+OR\s+REPLACE|REPLACE\s+INTO)\s+events\b", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("events", "projections", "plugin")
        for path in (ROOT / folder).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_sqlite3_is_imported_only_by_the_log_module() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for folder in ("events", "projections")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"^\s*(import sqlite3|from sqlite3)", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert importers == ["events/log.py"]
