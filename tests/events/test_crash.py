"""Crash injection: a child appends 100-event batches and reports each one after ``append``
returns; the parent SIGKILLs it at a random moment. After every kill the log must hold every
reported event, no partial batch, an intact chain and a sound file.

The kill moments come from a seeded RNG (printed; replay with ``TEST_SEED=<seed>``).
"""

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from events import EventLog, NewEvent
from tests.jobstreams import random_seed

CTX = multiprocessing.get_context("fork")
BATCH = 100
MAX_KILL_DELAY = 0.02  # a 100-event FULL-sync batch takes ~10 ms: kills land before, during, after it


def _event_id(trial: int, batch: int, i: int) -> str:
    return f"00000000-{trial:04d}-7000-8000-{batch * BATCH + i:012d}"


def _stream(trial: int, batch: int) -> str:
    return f"job-t{trial:04d}-b{batch:05d}"


def _append_until_killed(path: Path, report: Connection, trial: int) -> None:
    with EventLog.open(path) as log:
        report.send(-1)  # ready: the kill clock starts now
        batch = 0
        while True:
            events = [
                NewEvent("job.progress", {"percent": i % 100, "records": batch}, event_id=_event_id(trial, batch, i))
                for i in range(BATCH)
            ]
            log.append(_stream(trial, batch), events, expected_version=0)
            report.send(batch)  # only after append returned: this batch is acknowledged
            batch += 1


def _kill_during_appends(path: Path, trial: int, after: int, delay: float) -> list[int]:
    """Run one child; kill it ``delay`` s after its ``after``-th acknowledged batch (0: after it is
    ready). Return the batches it acknowledged."""
    receiver, sender = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_append_until_killed, args=(path, sender, trial))
    child.start()
    sender.close()
    acknowledged: list[int] = []
    assert receiver.poll(60) and receiver.recv() == -1, "the child never opened the log"
    while len(acknowledged) < after:
        assert receiver.poll(60), "the child stopped acknowledging batches"
        acknowledged.append(receiver.recv())
    time.sleep(delay)  # the random kill moment itself, not a wait for a condition
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    while True:
        try:
            acknowledged.append(receiver.recv())
        except EOFError:
            break
    receiver.close()
    return acknowledged


def _check(path: Path, acknowledged: dict[int, list[int]], context: str) -> int:
    """Every invariant after a crash; returns the number of batches the log holds."""
    with EventLog.open(path) as log:  # normal open: triggers present, quick_check ok, WAL recovered
        file = log.check_file()
        assert file.integrity == ("ok",), context
        report = log.verify()
        assert report.ok, f"{context}: {report}"
        counts = {
            row["stream_id"]: (row["n"], row["span"])
            for row in log.query(
                "SELECT stream_id, COUNT(*) AS n, MAX(id) - MIN(id) + 1 AS span FROM events GROUP BY stream_id"
            )
        }
        assert set(counts.values()) <= {(BATCH, BATCH)}, f"{context}: a partial or interleaved batch"
        for trial, batches in acknowledged.items():
            for batch in batches:
                ids = [e.event_id for e in log.read_stream(_stream(trial, batch))]
                assert ids == [_event_id(trial, batch, i) for i in range(BATCH)], f"{context}: lost batch {batch}"
        head = log.head()[0]
        assert head == len(counts) * BATCH == file.highest_issued, f"{context}: positions have a gap"
    return len(counts)


def _crash_trials(tmp_path: Path, trials: int) -> None:
    seed = random_seed()
    rng = random.Random(seed)
    acknowledged: dict[int, list[int]] = {}
    killed_mid_way = 0
    for trial in range(trials):
        # A fresh log every 10 trials keeps the per-trial chain check short; within a log, each
        # child appends to what the previous crashes left.
        path = tmp_path / f"events-{trial // 10}.db"
        if trial % 10 == 0:
            EventLog.open(path).close()
            acknowledged, held = {}, 0
        after, delay = rng.randint(0, 2), rng.uniform(0, MAX_KILL_DELAY)
        acknowledged[trial] = _kill_during_appends(path, trial, after, delay)
        context = f"seed {seed}, trial {trial}, kill {delay * 1000:.1f} ms after batch {after}"
        held, before = _check(path, acknowledged, context), held
        # Committed but unacknowledged means the kill fell between COMMIT and the report.
        killed_mid_way += held - before == len(acknowledged[trial])
    # Most kills should hit a child that was still appending (its last batch unacknowledged).
    assert killed_mid_way >= trials // 3, f"seed {seed}: only {killed_mid_way} kills found the child appending"


def test_sigkill_during_appends_loses_no_acknowledged_event_and_leaves_no_partial_batch(tmp_path: Path) -> None:
    _crash_trials(tmp_path, 30)


@pytest.mark.slow
def test_sigkill_during_appends_100_trials(tmp_path: Path) -> None:
    _crash_trials(tmp_path, 100)
