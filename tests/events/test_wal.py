"""Readers never pin the WAL: no read leaves a snapshot open, so an automatic checkpoint that finds
no read under way lets the -wal file restart, and it stays bounded; one reader that holds a snapshot
makes it grow, and ``EventLog.checkpoint()`` truncates it once the reader lets go."""

import sqlite3
import struct
import threading
from pathlib import Path

import pytest

from events import EventLog, EventLogError
from events.codec import encode
from events.log import WAL_TRUNCATE_BYTES
from events.vocabulary import JobProgress, JobRequested
from projections import ProjectionStore

PAD = "x" * 16000  # ~16 KiB per event: megabytes of WAL from few events (cheap to project)
PER_BATCH = 10
SLACK = 2 * 1024 * 1024  # a batch or two past a checkpoint that a busy machine runs late


def _wal(db: Path) -> Path:
    return Path(f"{db}-wal")


def _wal_state(db: Path) -> tuple[int, int | None]:
    """Size of the -wal file and its checkpoint sequence number (header bytes 12-15), which
    SQLite increments each time a checkpoint lets the WAL restart from its beginning."""
    try:
        with open(_wal(db), "rb") as fh:
            header = fh.read(32)
            size = fh.seek(0, 2)
    except FileNotFoundError:
        return 0, None
    return size, struct.unpack(">I", header[12:16])[0] if len(header) == 32 else None


def _bound(log: EventLog) -> int:
    """Twice the auto-checkpoint size: what the WAL may reach while readers keep letting go."""
    pages = log.query("PRAGMA wal_autocheckpoint")[0]["wal_autocheckpoint"]
    page_size = log.query("PRAGMA page_size")[0]["page_size"]
    journal_limit = log.query("PRAGMA journal_size_limit")[0]["journal_size_limit"]
    return min(2 * pages * page_size, journal_limit) + SLACK


def _write(db: Path, job: str, batches: int, sample: "list[tuple[int, int | None]]") -> None:
    with EventLog.open(db) as log:
        log.append(f"job-{job}", [encode(JobRequested(job_id=job))], expected_version=0)
        for _ in range(batches):
            events = [encode(JobProgress(current_object=PAD, percent=i)) for i in range(PER_BATCH)]
            log.append(f"job-{job}", events, expected_version=None)
            sample.append(_wal_state(db))


def test_reads_between_commits_leave_nothing_that_keeps_the_wal_from_restarting(db_path: Path) -> None:
    """Each commit's checkpoint, with the reads done, lets the WAL restart: it never passes the bound.
    A read that left its snapshot open would keep it from restarting, and it would hold all 3x."""
    with EventLog.open(db_path) as writer, EventLog.open(db_path) as tail, EventLog.open(db_path) as status_log:
        bound = _bound(writer)
        store = ProjectionStore(status_log)
        writer.append("job-w", [encode(JobRequested(job_id="w"))], expected_version=0)
        samples: list[tuple[int, int | None]] = []
        last = 0
        for _ in range(3 * bound // (PER_BATCH * len(PAD)) + 1):
            events = [encode(JobProgress(current_object=PAD, percent=i)) for i in range(PER_BATCH)]
            writer.append("job-w", events, expected_version=None)
            batch = tail.read_all(after=last)
            last = batch[-1].position if batch else last
            store.jobs(limit=5)
            store.count_jobs()
            assert not tail.in_transaction and not status_log.in_transaction
            samples.append(_wal_state(db_path))
    largest = max(size for size, _ in samples)
    assert largest <= bound, f"the WAL reached {largest} bytes, above {bound}: a read kept it from restarting"
    assert len({seq for _, seq in samples if seq is not None}) >= 3, "automatic checkpoints never let the WAL restart"


def test_polling_readers_and_status_reads_do_not_pin_the_wal(db_path: Path) -> None:
    """The same with two writers and two readers polling back to back in threads: no read leaves a
    transaction open and the WAL restarts. How far it grows in between is luck here, not a bound: a
    restart needs a checkpoint that finds no read under way, and two readers back to back are nearly
    always reading (1.4x to 6.6x the bound in 12 runs on a 2-core machine). The bound is the test above's."""
    with EventLog.open(db_path) as setup:
        bound = _bound(setup)
        ProjectionStore(setup)
    batches = 3 * bound // (PER_BATCH * len(PAD)) // 2 + 1
    samples: list[tuple[int, int | None]] = []
    problems: list[str] = []
    writers_done = threading.Event()

    def tail() -> None:
        with EventLog.open(db_path) as reader:
            last = 0
            while not writers_done.is_set():
                batch = reader.read_all(after=last)
                last = batch[-1].position if batch else last
                if reader.in_transaction:
                    problems.append("read_all left a transaction open")
                samples.append(_wal_state(db_path))

    def status() -> None:
        with EventLog.open(db_path) as reader:
            store = ProjectionStore(reader)
            while not writers_done.is_set():
                store.jobs(limit=5)
                store.count_jobs()
                if reader.in_transaction:
                    problems.append("a status read left a transaction open")
                samples.append(_wal_state(db_path))

    readers = [threading.Thread(target=tail), threading.Thread(target=status)]
    writers = [threading.Thread(target=_write, args=(db_path, f"w{i}", batches, samples)) for i in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    writers_done.set()
    for thread in readers:
        thread.join(120)

    assert problems == []
    restarts = {seq for _, seq in samples if seq is not None}
    assert len(restarts) >= 2, "automatic checkpoints never let the WAL restart: a reader pinned it"
    with EventLog.open(db_path) as log:
        assert log.head()[0] == 2 * (1 + PER_BATCH * batches)
        assert ProjectionStore(log).count_jobs() == 2


def test_a_reader_holding_a_snapshot_pins_the_wal_until_a_truncate_checkpoint(db_path: Path) -> None:
    with EventLog.open(db_path, busy_timeout=0.1) as log:
        bound = _bound(log)
        log.append("job-p", [encode(JobRequested(job_id="p"))], expected_version=0)
        pin = sqlite3.connect(db_path, isolation_level=None)
        try:
            pin.execute("BEGIN")
            pin.execute("SELECT COUNT(*) FROM events").fetchall()
            while _wal_state(db_path)[0] <= bound:
                log.append(
                    "job-p", [encode(JobProgress(current_object=PAD)) for _ in range(PER_BATCH)], expected_version=None
                )
            pinned = log.checkpoint()
            assert (pinned.ran, pinned.busy) == (True, True)
            assert pinned.wal_bytes_after > bound
        finally:
            pin.close()
        done = log.checkpoint()
        assert (done.ran, done.busy, done.wal_bytes_after) == (True, False, 0)
        assert done.wal_bytes_before > bound
        assert log.checkpoint() == type(done)(False, False, 0, 0)
        assert log.verify().ok


def test_checkpoint_refuses_inside_a_transaction_and_on_a_read_only_log(log: EventLog) -> None:
    with log.write_transaction(), pytest.raises(EventLogError, match="inside a transaction"):
        log.checkpoint(min_wal_bytes=0)
    with EventLog.open(log.path, readonly=True) as audit, pytest.raises(EventLogError, match="read-only"):
        audit.checkpoint()
    assert log.checkpoint(min_wal_bytes=WAL_TRUNCATE_BYTES).ran is False
