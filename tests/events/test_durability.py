"""Which commits are synced to disk: a job's outcome always, anything else only when asked.

SQLite reads ``PRAGMA synchronous`` at COMMIT from the setting made before ``BEGIN`` (checked with
strace on this project's machine: 40 commits alternating FULL and NORMAL gave 20 extra
fdatasync calls), so the tests check the statements the log sends, in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from events import EventLog, EventLogError, NewEvent
from events.vocabulary import OUTCOME_TYPES


def _setting_at_each_commit(statements: list[str]) -> list[str]:
    """The ``synchronous`` value in force at each COMMIT, from the traced statements."""
    current, found = "FULL", []
    for sql in statements:
        text = sql.strip().upper()
        if text.startswith("PRAGMA SYNCHRONOUS"):
            current = text.split("=")[1].strip()
        elif text == "COMMIT":
            found.append(current)
    return found


def _progress(n: int) -> NewEvent:
    return NewEvent("job.progress", {"records": n})


def test_an_outcome_is_synced_and_progress_is_not(tmp_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(tmp_path / "events.db") as opened:
        opened.close()
    with EventLog.open(tmp_path / "events.db", tracer=statements.append) as log:
        statements.clear()
        log.append("job-a", [NewEvent("job.requested", {"job_id": "a", "backup_type": "full"})], expected_version=0)
        log.append("job-a", [_progress(1), _progress(2)], expected_version=1)
        log.append("job-a", [_progress(3), NewEvent("job.completed", {"records": 3})], expected_version=3)
        log.append("job-a", [_progress(4)], expected_version=5)
        with log.write_transaction() as tx:  # the default: synced
            tx.execute("SELECT 1")
        assert [e.type for e in log.read_all()][-2:] == ["job.completed", "job.progress"]
    assert _setting_at_each_commit(statements) == ["NORMAL", "NORMAL", "FULL", "NORMAL", "FULL"]


def test_an_outcome_cannot_be_appended_in_a_transaction_that_is_not_synced(log: EventLog) -> None:
    assert {"job.completed", "job.failed", "job.cancelled", "job.interrupted", "job.cleaned"} == OUTCOME_TYPES
    for outcome in sorted(OUTCOME_TYPES):
        with (
            pytest.raises(EventLogError, match=f"{outcome} must be synced to disk"),
            log.write_transaction(durable=False) as tx,
        ):
            tx.append("job-b", [_progress(1), NewEvent(outcome, {})], expected_version=None)
    assert log.read_all() == []  # nothing of those batches was written


def test_sync_every_commit_syncs_progress_too(tmp_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(tmp_path / "events.db", tracer=statements.append, sync_every_commit=True) as log:
        statements.clear()
        log.append("job-c", [_progress(1)], expected_version=0)
        with log.write_transaction(durable=False) as tx:
            tx.append("job-c", [NewEvent("job.completed", {})], expected_version=1)
    assert _setting_at_each_commit(statements) == ["FULL", "FULL"]
