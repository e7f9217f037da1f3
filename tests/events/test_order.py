"""Global positions follow commit order, have no gaps and are never handed out twice, whatever is
refused, rolled back, vacuumed or deleted behind the log's back."""

import sqlite3
import threading
from pathlib import Path

import pytest

from events import ConcurrencyError, EventLog, NewEvent
from events.schema import TRIGGERS_DDL


def _event(i: int) -> NewEvent:
    return NewEvent("job.progress", {"percent": i})


def _fill(log: EventLog, n: int) -> None:
    for i in range(n):
        log.append(f"job-{i % 2}", [_event(i)], expected_version=None)


def _positions(log: EventLog) -> list[int]:
    return [e.position for e in log.read_all()]


def _raw(path: Path, *statements: str) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        for sql in statements:
            raw.execute(sql)
    finally:
        raw.close()


def test_refused_deletes_and_rolled_back_appends_leave_no_gap(log: EventLog) -> None:
    _fill(log, 5)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        _raw(log.path, "DELETE FROM events WHERE id = 5")
    with pytest.raises(RuntimeError), log.write_transaction() as tx:
        assert tx.append("job-x", [_event(1), _event(2)], expected_version=0) == [6, 7]
        raise RuntimeError("rolled back after positions 6 and 7 were taken inside the transaction")
    with pytest.raises(ConcurrencyError):
        log.append("job-0", [_event(9)], expected_version=0)
    assert log.check_file().highest_issued == 5
    assert log.append("job-y", [_event(3)], expected_version=0) == [6]
    assert _positions(log) == [1, 2, 3, 4, 5, 6]
    assert log.check_file().highest_issued == 6


def test_a_deleted_top_row_does_not_let_its_position_be_reused(log: EventLog, tmp_path: Path) -> None:
    """Even in a copy whose delete guard was dropped: AUTOINCREMENT's sqlite_sequence remembers 5."""
    _fill(log, 5)
    copy = tmp_path / "copy.db"
    log.query("VACUUM INTO ?", (str(copy),))
    _raw(copy, "DROP TRIGGER events_no_delete", "DELETE FROM events WHERE id = 5", TRIGGERS_DDL["events_no_delete"])
    with EventLog.open(copy) as tampered:
        assert _positions(tampered) == [1, 2, 3, 4]
        assert tampered.check_file().highest_issued == 5
        assert tampered.append("job-z", [_event(7)], expected_version=0) == [6]
        report = tampered.verify()
    assert (report.ok, report.first_bad_position) == (False, 6)
    assert report.problem == "gap: position 4 is followed by 6"


def test_vacuum_keeps_every_position_and_hash_and_a_deleted_row_stays_a_gap(log: EventLog) -> None:
    _fill(log, 6)
    before = [(e.position, e.event_id, e.hash) for e in log.read_all()]
    log.query("VACUUM")
    assert [(e.position, e.event_id, e.hash) for e in log.read_all()] == before
    assert log.verify().ok
    assert log.append("job-v", [_event(1)], expected_version=0) == [7]
    log.close()
    # With the guard dropped, delete a middle row: VACUUM must not renumber the rows after it.
    _raw(log.path, "DROP TRIGGER events_no_delete", "DELETE FROM events WHERE id = 3", "VACUUM")
    with EventLog.open(log.path, readonly=True) as audit:
        assert _positions(audit) == [1, 2, 4, 5, 6, 7]
        assert audit.check_file().highest_issued == 7
        assert audit.verify().first_bad_position == 4


def test_positions_follow_commit_order_not_call_order(db_path: Path) -> None:
    """A writer that asked first but commits second gets the later positions; readers never see
    an uncommitted position."""
    second_waiting = threading.Event()

    def trace(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            second_waiting.set()

    with EventLog.open(db_path) as first, EventLog.open(db_path, tracer=trace) as second:
        second_waiting.clear()
        outcome: list[list[int]] = []
        with first.write_transaction() as tx:
            waiter = threading.Thread(
                target=lambda: outcome.append(second.append("job-b", [_event(0)], expected_version=0))
            )
            waiter.start()
            assert second_waiting.wait(10)
            assert tx.append("job-a", [_event(1), _event(2)], expected_version=0) == [1, 2]
            with EventLog.open(db_path) as reader:
                assert reader.read_all() == []
        waiter.join(10)
        assert outcome == [[3]]
        assert [(e.position, e.stream_id) for e in first.read_all()] == [(1, "job-a"), (2, "job-a"), (3, "job-b")]
