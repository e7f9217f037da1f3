import sqlite3
from dataclasses import astuple
from pathlib import Path

import pytest

from events import EventLog, LogIntegrityError, NewEvent
from events.chain import GENESIS_HASH, ChainFields, event_hash
from projections import PoisonEventError, ProjectionStore


def _fixed(i: int) -> NewEvent:
    return NewEvent(
        "job.progress",
        {"current_object": "Account", "percent": i * 10},
        metadata={"actor": "worker"},
        event_id=f"00000000-0000-7000-8000-00000000000{i}",
        occurred_at=f"2025-06-04T10:15:0{i}.000Z",
    )


def _tamper(db_path: Path, sql: str, *, drop: str) -> None:
    raw = sqlite3.connect(db_path)
    try:
        raw.execute(f"DROP TRIGGER {drop}")
        raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


def test_hash_chain_matches_known_vectors(log: EventLog) -> None:
    """Three fixed events with hashes computed once and pinned: the hashing rule must never drift."""
    log.append("job-v", [_fixed(1), _fixed(2), _fixed(3)], expected_version=0)
    hashes = [e.hash for e in log.read_all()]
    assert hashes == [
        "f48a7cd31e1d95d628ef0321c24cf0677714b7adfa95d8e6fbcfe1a3a587cdfc",
        "34b9a3716b57381704855cfa81e075cc0c764c23574e92c89813f00f1affac0b",
        "ba3b55afb2f7e10a55d864159c81007add840097b4a9a52f2e397c0b4648f720",
    ]


def test_event_hash_covers_stored_text_exactly() -> None:
    fields = ChainFields("e", "s", 1, "job.progress", 1, '{"a":1}', "{}", None, None, "t")
    spaced = ChainFields("e", "s", 1, "job.progress", 1, '{"a": 1}', "{}", None, None, "t")
    assert event_hash(GENESIS_HASH, fields) != event_hash(GENESIS_HASH, spaced)


def test_verify_passes_an_untouched_log(log: EventLog) -> None:
    for i in range(10):
        log.append(f"job-{i % 2}", [NewEvent("job.progress", {"percent": i})], expected_version=None)
    report = log.verify()
    assert report.ok
    assert report.checked == 10
    assert report.first_bad_position is None


def test_verify_names_the_position_of_a_flipped_byte(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1), _fixed(2), _fixed(3)], expected_version=0)
    _tamper(
        db_path,
        "UPDATE events SET data = replace(data, 'Account', 'Accounu') WHERE id = 2",
        drop="events_no_update",
    )
    with EventLog.open(db_path, readonly=True) as audit:
        report = audit.verify()
    assert not report.ok
    assert report.first_bad_position == 2
    assert report.problem is not None and "hash" in report.problem


def test_verify_finds_a_deleted_middle_event(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1), _fixed(2), _fixed(3)], expected_version=0)
    _tamper(db_path, "DELETE FROM events WHERE id = 2", drop="events_no_delete")
    with EventLog.open(db_path, readonly=True) as audit:
        report = audit.verify()
    assert not report.ok
    assert report.first_bad_position == 3


def test_verify_with_an_anchor_detects_a_truncated_tail(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1), _fixed(2), _fixed(3)], expected_version=0)
        anchor = log.head()
        assert log.verify(anchor=anchor).ok
    _tamper(db_path, "DELETE FROM events WHERE id = 3", drop="events_no_delete")
    with EventLog.open(db_path, readonly=True) as audit:
        assert audit.verify().ok  # a clean prefix is still a valid chain on its own
        report = audit.verify(anchor=anchor)
    assert not report.ok
    assert report.problem is not None and "truncated" in report.problem


def test_verify_detects_two_swapped_events(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1), _fixed(2), _fixed(3)], expected_version=0)
    _tamper(
        db_path,
        "UPDATE events SET data = CASE id WHEN 1 THEN (SELECT data FROM events WHERE id = 2) "
        "ELSE (SELECT data FROM events WHERE id = 1) END WHERE id IN (1, 2)",
        drop="events_no_update",
    )
    with EventLog.open(db_path, readonly=True) as audit:
        report = audit.verify()
    assert not report.ok
    assert report.first_bad_position == 1


def _append_around_eventlog(db_path: Path, fields: ChainFields) -> None:
    """One row written with plain sqlite3, linked to the head with its correct hash: what only a
    writer that goes around EventLog can store (no CHECK refuses it since migration 4)."""
    with EventLog.open(db_path, readonly=True) as log:
        head = bytes.fromhex(log.head()[1])
    raw = sqlite3.connect(db_path)
    try:
        raw.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, metadata, "
            "occurred_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*astuple(fields)[:7], fields.occurred_at, head, event_hash(head, fields)),  # ids .. metadata
        )
        raw.commit()
    finally:
        raw.close()


def test_verify_names_a_row_whose_data_is_not_json_even_with_a_correct_hash(db_path: Path) -> None:
    """Migration 4 took the json_valid CHECKs off the table: a writer around EventLog can store any
    text and link it properly, and verify is what must still refuse it."""
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1), _fixed(2)], expected_version=0)
    _append_around_eventlog(
        db_path,
        ChainFields(
            "00000000-0000-7000-8000-000000000003", "job-v", 3, "job.progress", 1, "{not json", "{}", None, None, "t"
        ),
    )
    with EventLog.open(db_path, readonly=True) as audit:
        report = audit.verify()
    assert (report.ok, report.first_bad_position, report.problem) == (False, 3, "data or metadata is not valid JSON")
    assert report.checked == 3
    # Readers name the row too, as a damaged log, instead of failing with a bare JSON error.
    with EventLog.open(db_path) as log:
        assert [e.position for e in log.read_all(limit=2)] == [1, 2]
        with pytest.raises(LogIntegrityError, match=r"event at position 3 .* not JSON .*sfbackup verify"):
            log.read_all()
        with pytest.raises(PoisonEventError, match=r"position 3.*job.progress data is not JSON"):
            ProjectionStore(log).catch_up()


def test_verify_names_a_row_with_an_empty_stream_id(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-v", [_fixed(1)], expected_version=0)
    _append_around_eventlog(
        db_path,
        ChainFields("00000000-0000-7000-8000-000000000002", "", 1, "job.progress", 1, "{}", "{}", None, None, "t"),
    )
    with EventLog.open(db_path, readonly=True) as audit:
        report = audit.verify()
    assert (report.ok, report.first_bad_position) == (False, 2)
    assert report.problem == "stream id or type is empty or too long (at most 200 and 100 characters)"
