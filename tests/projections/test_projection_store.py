import random
import sqlite3
from pathlib import Path

import pytest

from events import EventLog, NewEvent, job_stream
from events.codec import encode
from events.vocabulary import (
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
)
from projections import PoisonEventError, ProjectionStore, RewrittenLogError
from projections import store as store_module


def _request(log: EventLog, job: str, org: str = "00Dorg1") -> None:
    payload = JobRequested(job_id=job, org_id=org, backup_directory=f"/b/{job}")
    log.append(
        job_stream(job),
        [encode(payload, occurred_at=f"2025-01-01T00:00:00.{len(job):03d}Z")],
        expected_version=0,
    )


def _finish(log: EventLog, job: str, records: int = 10) -> None:
    log.append(
        job_stream(job),
        [
            encode(JobStarted(attempt=1, objects_total=1), occurred_at="2025-01-01T00:01:00.000Z"),
            encode(JobProgress(records=records, percent=50), occurred_at="2025-01-01T00:02:00.000Z"),
            encode(
                JobCompleted(backup_directory=f"/b/{job}", records=records, objects=1),
                occurred_at="2025-01-01T00:03:00.000Z",
            ),
        ],
        expected_version=None,
    )


def _raw_dump(log: EventLog) -> dict[str, object]:
    """The tables as stored, without the catch-up that store reads do."""
    return {
        "job_status": log.query("SELECT * FROM job_status ORDER BY job_id"),
        "backup_catalog": log.query("SELECT * FROM backup_catalog ORDER BY job_id"),
        "checkpoints": log.query("SELECT projection, version, position FROM projection_checkpoints ORDER BY 1"),
    }


def test_catch_up_applies_each_event_exactly_once(log: EventLog) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    _finish(log, "a")
    assert store.catch_up() == 4
    assert store.catch_up() == 0
    _request(log, "b")
    assert store.catch_up() == 1
    status = store.job("a")
    assert status is not None
    assert (status.status, status.records, status.version, status.last_position) == ("completed", 10, 4, 4)
    assert store.count_jobs() == 2


def test_catch_up_works_in_batches_and_checkpoints_the_head(log: EventLog) -> None:
    _request(log, "big")
    log.append(
        job_stream("big"),
        [encode(JobProgress(percent=i % 100, records=i)) for i in range(1202)],
        expected_version=1,
    )
    store = ProjectionStore(log)
    assert store.catch_up() == 1203
    checkpoints = store.dump()["checkpoints"]
    assert [c["position"] for c in checkpoints] == [1203, 1203]
    assert [c["last_hash"] for c in checkpoints] == [log.head()[1]] * 2
    status = store.job("big")
    assert status is not None and status.records == 1201 and status.percent == 99


def test_rebuild_gives_tables_identical_to_the_live_ones(log: EventLog) -> None:
    rng = random.Random(20250604)
    store = ProjectionStore(log)
    jobs = [f"job{i:02d}" for i in range(12)]
    for job in jobs:
        _request(log, job, org=rng.choice(["00Dorg1", "00Dorg2"]))
        if rng.random() < 0.5:
            store.catch_up()
    for job in jobs:
        choice = rng.random()
        if choice < 0.5:
            _finish(log, job, records=rng.randrange(1000))
            if rng.random() < 0.5:
                log.append(job_stream(job), [encode(JobCleaned(reason="done"))], expected_version=None)
        elif choice < 0.8:
            log.append(job_stream(job), [encode(JobFailed(error_code="X", message="m"))], expected_version=None)
        if rng.random() < 0.3:
            store.catch_up()
    live = store.dump()
    assert store.rebuild() == log.head()[0]
    assert store.dump() == live
    other = ProjectionStore(log)
    assert other.dump() == live


def test_a_failure_mid_batch_leaves_rows_and_checkpoint_untouched(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    store.catch_up()
    before = _raw_dump(log)
    _finish(log, "a")
    _request(log, "b")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("projector killed")

    monkeypatch.setattr(store, "_advance", crash)
    with pytest.raises(RuntimeError):
        store.catch_up()
    assert _raw_dump(log) == before
    monkeypatch.undo()
    assert store.catch_up() == 4
    live = store.dump()
    store.rebuild()
    assert store.dump() == live


def test_a_poison_event_stops_the_projection_before_it(log: EventLog) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    log.append(job_stream("a"), [NewEvent("job.failed", {"message": "no error code"})], expected_version=1)
    with pytest.raises(PoisonEventError) as raised:
        store.catch_up()
    assert raised.value.position == 2
    assert "stale since position 1" in str(raised.value)
    assert _raw_dump(log)["checkpoints"] == []


def test_a_projection_version_bump_rebuilds_from_zero(log: EventLog, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    store.catch_up()
    live = store.dump()
    bumped = store_module.PROJECTION_VERSION + 1
    monkeypatch.setattr(store_module, "PROJECTION_VERSION", bumped)
    assert store.catch_up() == 1
    rebuilt = store.dump()
    assert [c["version"] for c in rebuilt["checkpoints"]] == [bumped, bumped]
    assert rebuilt["job_status"] == live["job_status"]


def test_a_rewritten_event_at_the_checkpoint_is_detected(log: EventLog) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    store.catch_up()
    raw = sqlite3.connect(log.path)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("UPDATE events SET hash = zeroblob(32) WHERE id = 1")
    raw.commit()
    raw.close()
    _request(log, "b")
    with pytest.raises(RewrittenLogError, match="position 1"):
        store.catch_up()


def test_jobs_and_backups_list_newest_first_with_paging(log: EventLog) -> None:
    store = ProjectionStore(log)
    for job in ("a", "b", "c"):
        _request(log, job, org="00Dorg1" if job != "b" else "00Dorg2")
    _finish(log, "c")
    _finish(log, "a")
    _finish(log, "b")
    assert [j.job_id for j in store.jobs()] == ["c", "b", "a"]
    assert [j.job_id for j in store.jobs(limit=1, offset=1)] == ["b"]
    assert [b.job_id for b in store.backups()] == ["b", "a", "c"]
    assert [b.job_id for b in store.backups(org_id="00Dorg1")] == ["a", "c"]
    assert store.count_backups() == 3
    assert store.count_backups("00Dorg2") == 1
    latest = store.latest_backup("00Dorg1")
    assert latest is not None and latest.job_id == "a" and latest.backup_directory == "/b/a"
    assert store.latest_backup("00Dnone") is None
    assert store.job("missing") is None


def test_status_reads_are_indexed_lookups(log: EventLog) -> None:
    ProjectionStore(log)
    plans = {
        "job": log.query("EXPLAIN QUERY PLAN SELECT * FROM job_status WHERE job_id = ?", ("a",)),
        "jobs": log.query("EXPLAIN QUERY PLAN SELECT * FROM job_status ORDER BY first_position DESC LIMIT 20"),
        "backups": log.query(
            "EXPLAIN QUERY PLAN SELECT * FROM backup_catalog WHERE org_id = ? ORDER BY position DESC LIMIT 1",
            ("o",),
        ),
        "checkpoint": log.query(
            "EXPLAIN QUERY PLAN SELECT * FROM projection_checkpoints WHERE projection IN ('job_status', 'x')"
        ),
    }
    for name, plan in plans.items():
        details = " ".join(row["detail"] for row in plan)
        assert "INDEX" in details or "PRIMARY KEY" in details, (name, details)
        assert "TEMP B-TREE" not in details, (name, details)


def test_an_up_to_date_read_takes_no_write_lock(tmp_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(tmp_path / "events.db", tracer=statements.append) as log:
        store = ProjectionStore(log)
        _request(log, "a")
        store.catch_up()
        statements.clear()
        assert store.job("a") is not None
    assert not any(s.startswith("BEGIN") for s in statements)
    assert len(statements) == 2


def test_cleaning_marks_the_backup_but_keeps_the_status_readable(log: EventLog) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    _finish(log, "a")
    log.append(
        job_stream("a"),
        [encode(JobCleaned(removed=("/tmp/x",)), occurred_at="2025-01-02T00:00:00.000Z")],
        expected_version=None,
    )
    status = store.job("a")
    assert status is not None
    assert (status.status, status.cleaned, status.cleaned_at) == (
        "completed",
        True,
        "2025-01-02T00:00:00.000Z",
    )
    [entry] = store.backups()
    assert entry.cleaned


def _write_and_follow(log: EventLog, store: ProjectionStore, job: str, events: list[NewEvent], version: int) -> int:
    with log.write_transaction() as tx:
        tx.append(job_stream(job), events, expected_version=version)
        return store.follow_in(tx)


def test_a_writer_folds_its_events_in_its_own_transaction(log: EventLog) -> None:
    writer, reader = ProjectionStore(log), ProjectionStore(log)
    _request(log, "a")
    writer.catch_up()
    progress = encode(JobStarted(attempt=1, objects_total=3), occurred_at="2025-01-01T00:01:00.000Z")
    assert _write_and_follow(log, writer, "a", [progress], 1) == 1
    checkpoints = _raw_dump(log)["checkpoints"]
    assert {c["position"] for c in checkpoints} == {log.head()[0]} == {2}
    assert reader.catch_up() == 0  # nothing left for a reader to write
    job = reader.job("a")
    assert job is not None and (job.status, job.objects_total) == ("running", 3)


def test_following_leaves_a_far_behind_projection_to_the_readers(log: EventLog) -> None:
    store = ProjectionStore(log)
    for n in range(3):
        _request(log, f"j{n}")
    started = encode(JobStarted(attempt=1, objects_total=1), occurred_at="2025-01-01T00:01:00.000Z")
    with log.write_transaction() as tx:
        tx.append(job_stream("j0"), [started], expected_version=1)
        assert store.follow_in(tx, most=3) == 0  # 4 events behind: not the writer's job
    assert _raw_dump(log)["checkpoints"] == []
    assert store.catch_up() == 4


def test_an_event_that_cannot_be_folded_never_fails_the_writer(log: EventLog) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    store.catch_up()
    assert _write_and_follow(log, store, "a", [NewEvent("job.failed", {"message": "no error code"})], 1) == 0
    assert log.head()[0] == 2  # the event is recorded ...
    assert {c["position"] for c in _raw_dump(log)["checkpoints"]} == {1}  # ... the projections stay before it
    with pytest.raises(PoisonEventError) as raised:
        store.catch_up()
    assert raised.value.position == 2


def test_reads_are_remembered_until_anyone_commits(log: EventLog, tmp_path: Path) -> None:
    store = ProjectionStore(log)
    _request(log, "a")
    store.catch_up()
    statements: list[str] = []
    log._require_conn().set_trace_callback(statements.append)
    first = store.job("a")
    assert first is not None and first.status == "requested"
    assert (store.job("a"), store.jobs(limit=5), store.jobs(limit=5), store.count_jobs()) == (
        first,
        [first],
        [first],
        1,
    )
    reads = [s for s in statements if "FROM job_status" in s]
    assert len(reads) == 3  # one per distinct read: the job, the page, the count
    with EventLog.open(log.path) as other:  # another process's commit ...
        other.append(job_stream("a"), [encode(JobStarted(attempt=1, objects_total=2))], expected_version=1)
        _request(other, "b")
    job = store.job("a")  # ... is seen at once
    assert job is not None and (job.status, job.objects_total) == ("running", 2)
    assert [j.job_id for j in store.jobs(limit=5)] == ["b", "a"] and store.count_jobs() == 2
    log._require_conn().set_trace_callback(None)


def test_looks_for_jobs_by_status_use_an_index_also_in_a_log_from_before_it(log: EventLog) -> None:
    ProjectionStore(log)
    with log.write_transaction() as tx:  # a log whose projections predate the index
        tx.execute("DROP INDEX job_status_by_status")
    ProjectionStore(log)
    sql = "SELECT * FROM job_status WHERE status IN ('completed', 'cancelled') AND cleaned = 0 ORDER BY first_position"
    plan = " ".join(row["detail"] for row in log.query(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX job_status_by_status" in plan, plan
