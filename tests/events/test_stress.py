"""Several writer processes at once: no lock errors, and a tailing reader never sees a gap.

Writers are forked (cheap, and the parent holds no connection or thread at that moment); the
reader tails in a thread of the parent with its own connection.
"""

import multiprocessing
import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from events import EventLog, EventLogError, NewEvent, StoreBusyError

CTX = multiprocessing.get_context("fork")
WRITERS = 4
DEADLINE = 120.0


def _writer(path: Path, index: int, count: int, start: Event, results: "Queue[Any]") -> None:
    """Append ``count`` single events: own stream with expected versions, every 5th to a shared one."""
    positions: list[int] = []
    errors: list[str] = []
    own = 0
    with EventLog.open(path) as log:
        start.wait(DEADLINE)
        for seq in range(count):
            event = NewEvent("job.progress", {"writer": index, "seq": seq})
            try:
                if seq % 5 == 4:
                    positions += log.append("job-shared", [event], expected_version=None)
                else:
                    positions += log.append(f"job-w{index}", [event], expected_version=own)
                    own += 1
            except EventLogError as e:
                errors.append(f"{type(e).__name__}: {e}")
    results.put((index, positions, errors))


@pytest.mark.parametrize("count", [250, pytest.param(1000, marks=pytest.mark.slow)])
def test_concurrent_writers_get_no_lock_errors_and_a_tailing_reader_sees_no_gap(db_path: Path, count: int) -> None:
    total = WRITERS * count
    EventLog.open(db_path).close()
    start = CTX.Event()
    results: Queue[Any] = CTX.Queue()
    writers = [CTX.Process(target=_writer, args=(db_path, i, count, start, results)) for i in range(WRITERS)]
    for process in writers:
        process.start()

    seen: list[tuple[int, int, str, int]] = []
    problems: list[str] = []
    polls = 0

    def tail() -> None:
        nonlocal polls
        deadline = time.monotonic() + DEADLINE
        with EventLog.open(db_path) as reader:
            last = 0
            while last < total and time.monotonic() < deadline:
                batch = reader.read_all(after=last)
                if reader.in_transaction:
                    problems.append("read_all left a read transaction open")
                if not batch:
                    continue
                polls += 1
                got = [e.position for e in batch]
                if got != list(range(last + 1, last + 1 + len(got))):
                    problems.append(f"after {last} the reader saw {got[:5]}...")
                seen.extend((e.position, e.data["writer"], e.stream_id, e.stream_version) for e in batch)
                last = got[-1]

    reader = threading.Thread(target=tail)
    reader.start()
    start.set()
    reports = sorted(results.get(timeout=DEADLINE) for _ in writers)
    for process in writers:
        process.join(DEADLINE)
    reader.join(DEADLINE)

    assert [errors for _, _, errors in reports] == [[]] * WRITERS
    assert [p.exitcode for p in writers] == [0] * WRITERS
    assert problems == []
    assert [position for position, *_ in seen] == list(range(1, total + 1))
    assert polls >= 1
    every = sorted(p for _, positions, _ in reports for p in positions)
    assert every == list(range(1, total + 1)), "positions are gap-free and none was handed out twice"
    for _, positions, _ in reports:
        assert positions == sorted(positions), "one writer's appends get increasing positions"
    shared_versions = [version for _, _, stream, version in seen if stream == "job-shared"]
    assert shared_versions == list(range(1, WRITERS * (count // 5) + 1))
    with EventLog.open(db_path) as log:
        assert log.check_file().highest_issued == total
        assert log.verify().ok


def _hold_write_lock(path: Path, locked: Event, release: Event) -> None:
    with EventLog.open(path) as log, log.write_transaction() as tx:
        tx.append("job-holder", [NewEvent("job.progress", {"percent": 1})], expected_version=0)
        locked.set()
        release.wait(DEADLINE)


def _contend(path: Path, busy_timeout: float, results: "Queue[Any]") -> None:
    with EventLog.open(path, busy_timeout=busy_timeout) as log:
        began = time.monotonic()
        try:
            log.append("job-contender", [NewEvent("job.progress", {"percent": 2})], expected_version=None)
            outcome = "appended"
        except StoreBusyError as e:
            outcome = f"StoreBusyError: {e}"
        results.put((outcome, time.monotonic() - began))


def test_a_writer_holding_the_lock_gives_other_processes_a_bounded_store_busy_error(db_path: Path) -> None:
    busy_timeout = 0.25
    EventLog.open(db_path).close()
    locked, release = CTX.Event(), CTX.Event()
    results: Queue[Any] = CTX.Queue()
    holder = CTX.Process(target=_hold_write_lock, args=(db_path, locked, release))
    holder.start()
    try:
        assert locked.wait(DEADLINE), "the holder never took the write lock"
        contenders = [CTX.Process(target=_contend, args=(db_path, busy_timeout, results)) for _ in range(2)]
        for process in contenders:
            process.start()
        outcomes = [results.get(timeout=DEADLINE) for _ in contenders]
        for process in contenders:
            process.join(DEADLINE)
    finally:
        release.set()
        holder.join(DEADLINE)
    assert holder.exitcode == 0
    for outcome, elapsed in outcomes:
        assert outcome.startswith(
            "StoreBusyError: begin write transaction: the event log stayed locked past the busy timeout"
        ), outcome
        # It waited for the lock (the busy handler ran) but did not hang: a generous bound, not a timing.
        assert busy_timeout * 0.5 <= elapsed < busy_timeout * 8 + 2.0, elapsed
    with EventLog.open(db_path) as log:
        assert [e.stream_id for e in log.read_all()] == ["job-holder"]
        assert log.append("job-contender", [NewEvent("job.progress", {"percent": 3})], expected_version=0) == [2]
