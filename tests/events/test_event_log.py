import sqlite3
import threading
from pathlib import Path

import pytest

from events import (
    ConcurrencyError,
    EventLog,
    EventLogError,
    IdempotencyConflictError,
    NewEvent,
    StoreBusyError,
    UnknownEventTypeError,
    job_stream,
    new_job_id,
)
from events.codec import decode, encode
from events.schema import SCHEMA_VERSION
from events.vocabulary import JobProgress, JobRequested


def _progress(percent: int, **kw: object) -> NewEvent:
    return encode(JobProgress(percent=percent), **kw)  # type: ignore[arg-type]


def test_open_creates_parent_folder_and_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.db"
    with EventLog.open(str(path)) as log:
        assert log.path == path
        assert log.head() == (0, "00" * 32)
        assert log.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        assert log.query("PRAGMA synchronous")[0]["synchronous"] == 2  # FULL
    assert path.exists()


def test_opening_twice_keeps_schema_version_and_data(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-a", [_progress(1)], expected_version=0)
    with EventLog.open(db_path) as log:
        assert log.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
        assert log.stream_version("job-a") == 1


def test_appended_events_read_back_with_every_field(log: EventLog) -> None:
    event = NewEvent(
        "job.requested",
        {"job_id": "j1", "backup_type": "full", "objects_filter": ["Account"], "note": "é✓"},
        metadata={"actor": "test", "pid": 7},
        correlation_id="req-1",
        causation_id="cmd-1",
        occurred_at="2025-06-04T10:15:00.000Z",
    )
    positions = log.append("job-j1", [event], expected_version=0)
    [recorded] = log.read_all()
    assert positions == [1]
    assert recorded.position == 1
    assert recorded.event_id == event.event_id
    assert recorded.stream_id == "job-j1"
    assert recorded.stream_version == 1
    assert recorded.type == "job.requested"
    assert recorded.schema_version == 1
    assert recorded.data == dict(event.data)
    assert recorded.metadata == {"actor": "test", "pid": 7}
    assert (recorded.correlation_id, recorded.causation_id) == ("req-1", "cmd-1")
    assert recorded.occurred_at == "2025-06-04T10:15:00.000Z"
    assert recorded.recorded_at.endswith("Z")
    assert log.head() == (1, recorded.hash)
    assert len(recorded.hash) == 64


def test_positions_are_gap_free_across_streams_and_batches(log: EventLog) -> None:
    seen: list[int] = []
    for i in range(20):
        stream = f"job-{i % 3}"
        batch = [_progress(j) for j in range(i % 4 + 1)]
        seen += log.append(stream, batch, expected_version=log.stream_version(stream))
    assert seen == list(range(1, len(seen) + 1))
    assert [e.position for e in log.read_all()] == seen
    for stream in ("job-0", "job-1", "job-2"):
        versions = [e.stream_version for e in log.read_stream(stream)]
        assert versions == list(range(1, len(versions) + 1))


def test_read_all_and_read_stream_page_with_after_and_limit(log: EventLog) -> None:
    log.append("job-a", [_progress(i) for i in range(5)], expected_version=0)
    log.append("job-b", [_progress(i) for i in range(3)], expected_version=0)
    assert [e.position for e in log.read_all(after=2, limit=3)] == [3, 4, 5]
    assert [e.position for e in log.read_all(after=8)] == []
    assert [e.stream_version for e in log.read_stream("job-a", after=3)] == [4, 5]
    assert [e.stream_version for e in log.read_stream("job-b", limit=2)] == [1, 2]
    assert log.read_stream("job-missing") == []
    assert log.stream_version("job-missing") == 0


def test_append_with_stale_expected_version_raises_concurrency_error(log: EventLog) -> None:
    log.append("job-a", [_progress(1), _progress(2)], expected_version=0)
    with pytest.raises(ConcurrencyError) as raised:
        log.append("job-a", [_progress(3)], expected_version=1)
    assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("job-a", 1, 2)
    assert log.stream_version("job-a") == 2


def test_append_without_expected_version_appends_at_the_end(log: EventLog) -> None:
    log.append("job-a", [_progress(1)], expected_version=None)
    log.append("job-a", [_progress(2)], expected_version=None)
    assert log.stream_version("job-a") == 2


def test_two_connections_with_the_same_expected_version_exactly_one_wins(db_path: Path) -> None:
    with EventLog.open(db_path) as setup:
        setup.append("job-race", [_progress(0)], expected_version=0)
    logs = [EventLog.open(db_path) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def contend(log: EventLog) -> None:
        barrier.wait()
        try:
            log.append("job-race", [_progress(1)], expected_version=1)
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=contend, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    assert sorted(outcomes) == ["conflict", "won"]
    with EventLog.open(db_path) as log:
        assert log.stream_version("job-race") == 2


def test_reappending_the_same_batch_returns_original_positions_and_writes_nothing(log: EventLog) -> None:
    batch = [_progress(1), _progress(2)]
    first = log.append("job-a", batch, expected_version=0)
    log.append("job-b", [_progress(3)], expected_version=0)
    again = log.append("job-a", batch, expected_version=0)
    assert again == first == [1, 2]
    assert log.query("SELECT COUNT(*) AS n FROM events")[0]["n"] == 3


def test_reappending_an_event_id_with_other_data_raises_idempotency_conflict(log: EventLog) -> None:
    original = _progress(1)
    log.append("job-a", [original], expected_version=0)
    forged = _progress(2, event_id=original.event_id)
    with pytest.raises(IdempotencyConflictError) as raised:
        log.append("job-a", [forged], expected_version=None)
    assert raised.value.event_id == original.event_id
    other_stream = _progress(1, event_id=original.event_id)
    with pytest.raises(IdempotencyConflictError):
        log.append("job-b", [other_stream], expected_version=None)
    assert log.query("SELECT COUNT(*) AS n FROM events")[0]["n"] == 1


def test_a_batch_only_partly_recorded_is_an_idempotency_conflict(log: EventLog) -> None:
    recorded = _progress(1)
    log.append("job-a", [recorded], expected_version=0)
    with pytest.raises(IdempotencyConflictError):
        log.append("job-a", [recorded, _progress(2)], expected_version=None)
    with pytest.raises(IdempotencyConflictError):
        log.append("job-a", [recorded, recorded], expected_version=None)


def test_unknown_event_type_is_refused_before_anything_is_written(log: EventLog) -> None:
    with pytest.raises(UnknownEventTypeError):
        NewEvent("job.exploded", {})
    assert log.head()[0] == 0


def test_write_blocked_past_busy_timeout_raises_store_busy(db_path: Path) -> None:
    with EventLog.open(db_path, busy_timeout=0.05) as log:
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreBusyError) as refused:
                log.append("job-a", [_progress(1)], expected_version=0)
            holder.execute("ROLLBACK")
            # It says what happened, that nothing was recorded, and what to do.
            assert str(refused.value) == (
                "begin write transaction: the event log stayed locked past the busy timeout (database is locked): "
                "another process holds a long write transaction. Nothing was recorded by this call; try again in a "
                "moment"
            )
        finally:
            holder.close()
        assert log.append("job-a", [_progress(1)], expected_version=0) == [1]


def test_write_transaction_rolls_back_everything_when_the_block_raises(log: EventLog) -> None:
    log.append("job-a", [_progress(1)], expected_version=0)
    with pytest.raises(RuntimeError), log.write_transaction() as tx:
        tx.append("job-a", [_progress(2)], expected_version=1)
        tx.execute("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("boom")
    assert log.stream_version("job-a") == 1
    assert log.query("SELECT name FROM sqlite_master WHERE name = 'scratch'") == []


def test_a_refused_batch_inside_a_transaction_leaves_the_rest_of_it_intact(log: EventLog) -> None:
    with log.write_transaction() as tx:
        tx.execute("CREATE TABLE leases (job_id TEXT PRIMARY KEY)")
        tx.execute("INSERT INTO leases VALUES (?)", ("a",))
        assert tx.append("job-a", [_progress(1)], expected_version=0) == [1]
        with pytest.raises(ConcurrencyError):
            tx.append("job-a", [_progress(2), _progress(3)], expected_version=0)
        assert tx.stream_version("job-a") == 1
    assert log.query("SELECT job_id FROM leases") == [{"job_id": "a"}]
    assert log.stream_version("job-a") == 1


def test_a_batch_refused_at_its_insert_inside_a_transaction_leaves_the_rest_of_it_intact(log: EventLog) -> None:
    """A small batch is one INSERT and runs without a savepoint: SQLite backs the failed statement
    out and the transaction goes on; a retried batch still answers its first positions."""
    taken = _progress(1)
    log.append("job-a", [taken], expected_version=0)
    with log.write_transaction() as tx:
        tx.execute("CREATE TABLE leases (job_id TEXT PRIMARY KEY)")
        tx.execute("INSERT INTO leases VALUES (?)", ("a",))
        assert tx.append("job-b", [_progress(2)], expected_version=0) == [2]
        with pytest.raises(IdempotencyConflictError):  # the id is another stream's: refused by UNIQUE
            tx.append("job-c", [_progress(3), _progress(4, event_id=taken.event_id)], expected_version=0)
        assert tx.append("job-a", [taken], expected_version=0) == [1]  # a retry: nothing written
        assert tx.append("job-c", [_progress(5)], expected_version=0) == [3]
    assert log.query("SELECT job_id FROM leases") == [{"job_id": "a"}]
    assert [(e.stream_id, e.position) for e in log.read_all()] == [("job-a", 1), ("job-b", 2), ("job-c", 3)]
    assert log.verify().ok


def test_a_batch_of_several_inserts_refused_at_a_later_one_leaves_none_of_its_rows(log: EventLog) -> None:
    """Past one INSERT's rows a batch runs in a savepoint: a refusal at its second statement also
    takes back what the first wrote."""
    conn = log._require_conn()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    taken = _progress(1)
    log.append("job-a", [taken], expected_version=0)
    events = [_progress(i) for i in range(299)] + [_progress(0, event_id=taken.event_id)]
    with log.write_transaction() as tx:
        with pytest.raises(IdempotencyConflictError):
            tx.append("job-b", events, expected_version=0)
        assert tx.stream_version("job-b") == 0
        assert tx.append("job-b", [_progress(7)], expected_version=0) == [2]
    assert log.query("SELECT COUNT(*) AS n FROM events")[0]["n"] == 2
    assert log.verify().ok


def test_a_small_append_is_one_insert_without_a_savepoint(db_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(db_path, tracer=statements.append) as log:
        statements.clear()
        log.append("job-a", [_progress(1), _progress(2)], expected_version=0)
    assert not [s for s in statements if "SAVEPOINT" in s or "RELEASE" in s]
    assert len([s for s in statements if s.startswith("INSERT INTO events")]) == 1


def test_nested_write_transaction_is_refused_with_a_clear_error(log: EventLog) -> None:
    with log.write_transaction(), pytest.raises(EventLogError, match="already open"):
        log.append("job-a", [_progress(1)], expected_version=0)


def test_data_version_changes_when_another_connection_commits(db_path: Path) -> None:
    with EventLog.open(db_path) as follower, EventLog.open(db_path) as writer:
        before = follower.data_version()
        own = writer.data_version()
        writer.append("job-a", [_progress(1)], expected_version=0)
        assert follower.data_version() != before
        assert writer.data_version() == own


def test_closed_log_refuses_calls(db_path: Path) -> None:
    log = EventLog.open(db_path)
    log.close()
    log.close()
    with pytest.raises(EventLogError, match="closed"):
        log.head()


def test_every_vocabulary_type_round_trips_through_the_log(log: EventLog) -> None:
    job_id = new_job_id()
    payload = JobRequested(job_id=job_id, backup_type="incremental", since_date="2025-01-01T00:00:00Z")
    log.append(job_stream(job_id), [encode(payload, correlation_id="c")], expected_version=0)
    [recorded] = log.read_stream(job_stream(job_id))
    assert decode(recorded) == payload
    assert recorded.correlation_id == "c"


def test_tracer_sees_begin_immediate_for_writes(db_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(db_path, tracer=statements.append) as log:
        statements.clear()
        log.append("job-a", [_progress(1)], expected_version=0)
    # (a progress commit is not synced to disk: tests/events/test_durability.py)
    assert statements[:2] == ["PRAGMA synchronous = NORMAL", "BEGIN IMMEDIATE"]
    assert statements[-1] == "COMMIT"


def test_a_full_disk_is_a_storage_full_error_saying_to_free_space(log: EventLog) -> None:
    from events import StorageFullError

    with log.write_transaction() as tx:
        pages = tx.execute("PRAGMA page_count")[0]["page_count"]
        tx.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL, as on a full disk
    with pytest.raises(StorageFullError, match=r"no room left for the event log .*free space on that disk"):
        for i in range(200):
            log.append(f"job-{i}", [encode(JobProgress(percent=1, current_object="x" * 4000))], expected_version=0)


def _batch(shape: str, size: int) -> list[NewEvent]:
    events = []
    for i in range(size):
        differs = i == size // 2
        events.append(
            NewEvent(
                "job.requested" if shape == "another type" and differs else "job.progress",
                {"percent": i, "note": "é" * (i % 3)},
                metadata={"attempt": 2} if shape == "other metadata" and differs else None,
                schema_version=2 if shape == "another schema version" and differs else 1,
                correlation_id=f"req-{i}" if shape == "with causes" else None,
                causation_id="cmd-1" if shape == "with causes" and i % 2 else None,
            )
        )
    return events


@pytest.mark.parametrize(
    "shape", ["uniform", "another type", "other metadata", "another schema version", "with causes"]
)
@pytest.mark.parametrize("size", [1, 3, 128, 129, 300])  # one INSERT holds up to 128 rows
def test_a_batch_is_stored_as_given_whether_or_not_its_events_share_type_and_metadata(
    log: EventLog, shape: str, size: int
) -> None:
    """A batch whose events all share type, schema version and metadata binds those once; any
    other batch binds them per row. Either way every row holds its own event's values."""
    log.append("job-x", [_progress(0)], expected_version=0)
    events = _batch(shape, size)
    assert log.append("job-x", events, expected_version=1) == list(range(2, size + 2))
    stored = log.read_stream("job-x", after=1)
    assert [
        (e.event_id, e.type, e.schema_version, e.data, e.metadata, e.correlation_id, e.causation_id, e.occurred_at)
        for e in stored
    ] == [
        (
            e.event_id,
            e.type,
            e.schema_version,
            dict(e.data),
            dict(e.metadata),
            e.correlation_id,
            e.causation_id,
            e.occurred_at,
        )
        for e in events
    ]
    assert [e.stream_version for e in stored] == list(range(2, size + 2))
    assert log.verify().ok and log.verify().checked == size + 1


def test_a_big_batch_fits_an_sqlite_that_binds_at_most_999_parameters(log: EventLog) -> None:
    """SQLite before 3.32 (the default limit of some distributions' library) refuses a statement of
    more than 999 parameters: a batch is cut to fit the connection's limit, and stays one batch.
    The widest rows: types that differ (nothing shared) and correlation ids (nine values a row)."""
    conn = log._require_conn()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    events = [
        NewEvent("job.progress" if i % 2 else "job.requested", {"percent": i}, correlation_id=f"req-{i}")
        for i in range(300)
    ]
    assert log.append("job-y", events, expected_version=0) == list(range(1, 301))
    assert [e.event_id for e in log.read_stream("job-y")] == [e.event_id for e in events]
    assert log.verify().ok


def test_read_rows_with_most_bytes_stops_at_the_row_that_brings_the_data_over_it(db_path: Path) -> None:
    with EventLog.open(db_path) as log:
        log.append("job-a", [_progress(p) for p in range(5)], expected_version=0)
        with log.write_transaction() as tx:
            rows, _ = tx.read_rows()
            sizes = [len(row[5]) for row in rows]
            assert len(rows) == 5
            over, last_hash = tx.read_rows(most_bytes=sizes[0] + sizes[1] - 1)
            assert [row[0] for row in over] == [1, 2]  # the second is read (it goes over), the third is not
            assert last_hash is not None and last_hash.hex() == log.hash_at(2)
            assert len(tx.read_rows(most_bytes=sum(sizes))[0]) == 5  # at the budget: all of them
            assert len(tx.read_rows(limit=3, most_bytes=10**6)[0]) == 3
