"""A current store answers from one indexed lookup, and still sees every commit, whoever made it."""

from pathlib import Path

from events import EventLog, job_stream
from events.codec import encode
from events.vocabulary import JobProgress, JobRequested
from projections import ProjectionStore


def _request(log: EventLog, job: str) -> None:
    log.append(job_stream(job), [encode(JobRequested(job_id=job))], expected_version=0)


def _progress(log: EventLog, job: str, percent: int) -> None:
    log.append(job_stream(job), [encode(JobProgress(percent=percent))], expected_version=None)


def test_a_current_store_reads_without_touching_the_events_table(tmp_path: Path) -> None:
    statements: list[str] = []
    with EventLog.open(tmp_path / "events.db", tracer=statements.append) as log:
        store = ProjectionStore(log)
        _request(log, "a")
        store.catch_up()
        statements.clear()
        for _ in range(3):
            assert store.job("a") is not None
    assert not [s for s in statements if "FROM events" in s]
    assert statements.count("PRAGMA data_version") == 3


def test_a_current_store_sees_an_append_through_its_own_connection(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "events.db") as log:
        store = ProjectionStore(log)
        _request(log, "a")
        assert store.job("a") is not None
        _progress(log, "a", 40)
        status = store.job("a")
        assert status is not None and status.percent == 40


def test_a_current_store_sees_an_append_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventLog.open(path) as reader, EventLog.open(path) as writer:
        store = ProjectionStore(reader)
        _request(writer, "a")
        assert store.job("a") is not None
        _progress(writer, "a", 70)
        status = store.job("a")
        assert status is not None and status.percent == 70
        _request(writer, "b")
        assert store.count_jobs() == 2


def test_two_stores_on_one_connection_each_see_the_others_catch_up(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "events.db") as log:
        first, second = ProjectionStore(log), ProjectionStore(log)
        _request(log, "a")
        assert first.job("a") is not None
        assert second.job("a") is not None
        _progress(log, "a", 10)
        assert second.catch_up() == 1
        assert first.catch_up() == 0
        status = first.job("a")
        assert status is not None and status.percent == 10
