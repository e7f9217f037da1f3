"""The follower: events other processes append, each yielded once, in commit order, with both hint sources.

Latency is not asserted here (shared CI cores); ``bench/follow_latency.py`` measures it. Deadlines
below only stop a broken follower from hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from events import EventLog, RecordedEvent
from events.follow import Follower
from events.watch import NOTIFY_METHODS, WalWatchHints

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds; generous, never reached by a working follower

WRITER = r"""
import json, sys
from events import EventLog, NewEvent
with EventLog.open(sys.argv[1]) as log:
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "append":
            ids, positions = [], []
            for start in range(0, cmd["count"], cmd["per_commit"]):
                n = min(cmd["per_commit"], cmd["count"] - start)
                batch = [NewEvent("job.progress", {"records": start + i}) for i in range(n)]
                positions += log.append(cmd["stream"], batch, expected_version=None)
                ids += [e.event_id for e in batch]
            print(json.dumps({"ids": ids, "positions": positions}), flush=True)
        elif cmd["op"] == "checkpoint":
            row = log.query("PRAGMA wal_checkpoint(TRUNCATE)")[0]
            print(json.dumps([row["busy"], row["log"], row["checkpointed"]]), flush=True)
"""


class Writer:
    """Another process appending to the log on command."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "writer process died"
        return line.strip()

    def _send(self, cmd: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read())

    def append(self, stream: str, count: int, *, per_commit: int = 1) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = self._send(
            {"op": "append", "stream": stream, "count": count, "per_commit": per_commit}
        )
        return result

    def checkpoint(self) -> list[int]:
        result: list[int] = self._send({"op": "checkpoint"})
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=DEADLINE)
        self.proc.stdout.close()
        assert code == 0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    EventLog.open(path).close()
    return path


@pytest.fixture
def writer(db: Path) -> Iterator[Writer]:
    w = Writer(db)
    yield w
    w.close()


def take(events: Iterator[RecordedEvent], n: int) -> list[RecordedEvent]:
    got: list[RecordedEvent] = []
    for event in events:
        got.append(event)
        if len(got) == n:
            break
    return got


def in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("notify", NOTIFY_METHODS)
def test_events_appended_by_another_process_are_yielded_in_order_exactly_once(
    db: Path, writer: Writer, notify: Any
) -> None:
    with Follower.open(db, notify=notify) as follower:
        stream = follower.events(timeout=DEADLINE)
        thread, out = in_thread(lambda: take(stream, 40 + 30 + 700))
        written = writer.append("job-a", 40)  # one commit each
        written_b = writer.append("job-b", 30, per_commit=7)
        written_c = writer.append("job-a", 700, per_commit=700)  # more than one read batch
        thread.join(DEADLINE)
        (got,) = out
    ids = written["ids"] + written_b["ids"] + written_c["ids"]
    assert [e.event_id for e in got] == ids
    assert [e.position for e in got] == list(range(1, len(ids) + 1))
    assert follower.position == len(ids)


def test_following_from_a_position_starts_right_after_it(db: Path, writer: Writer) -> None:
    writer.append("job-a", 10)
    with Follower.open(db, after=4) as follower:
        stream = follower.events(timeout=DEADLINE)
        assert [e.position for e in take(stream, 6)] == [5, 6, 7, 8, 9, 10]
        later = writer.append("job-b", 3)
        assert [e.event_id for e in take(stream, 3)] == later["ids"]


def test_stream_filter_yields_only_that_stream_after_the_position(db: Path, writer: Writer) -> None:
    a1 = writer.append("job-a", 3)  # positions 1-3
    writer.append("job-b", 2)  # 4-5
    a2 = writer.append("job-a", 2)  # 6-7
    with Follower.open(db, after=2, stream="job-a") as follower:
        stream = follower.events(timeout=DEADLINE)
        assert [e.position for e in take(stream, 3)] == [3, 6, 7]
        writer.append("job-b", 5)
        a3 = writer.append("job-a", 2)
        got = take(stream, 2)
    assert [e.event_id for e in got] == a3["ids"]
    assert {e.stream_id for e in got} == {"job-a"}
    assert a1["positions"][-1] == 3 and a2["positions"] == [6, 7]


def test_stop_event_and_timeout_end_the_iteration(db: Path, writer: Writer) -> None:
    stop, got_two = threading.Event(), threading.Event()
    got: list[int] = []

    def consume() -> None:
        for event in follower.events(stop=stop):
            got.append(event.position)
            if len(got) == 2:
                got_two.set()

    with Follower.open(db) as follower:
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        writer.append("job-a", 2)
        assert got_two.wait(DEADLINE)
        stop.set()
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert got == [1, 2]
    with Follower.open(db, after=2) as follower:
        assert list(follower.events(timeout=0.05)) == []


@pytest.mark.parametrize("notify", NOTIFY_METHODS)
def test_following_survives_a_truncating_checkpoint(db: Path, writer: Writer, notify: Any) -> None:
    with Follower.open(db, notify=notify) as follower:
        stream = follower.events(timeout=DEADLINE)
        first = writer.append("job-a", 5)
        assert [e.event_id for e in take(stream, 5)] == first["ids"]
        assert writer.checkpoint() == [0, 0, 0]  # the WAL is empty again (truncated to 0 bytes)
        assert Path(f"{db}-wal").stat().st_size == 0
        second = writer.append("job-a", 5)
        assert [e.event_id for e in take(stream, 5)] == second["ids"]


def test_a_paused_follower_holds_no_read_transaction(db: Path, writer: Writer) -> None:
    """An open reader would pin the WAL: a TRUNCATE checkpoint would report busy and leave frames."""
    writer.append("job-a", 3, per_commit=3)
    with Follower.open(db) as follower:
        stream = follower.events(timeout=DEADLINE)
        assert next(stream).position == 1  # paused in the middle of a batch of three
        assert writer.checkpoint() == [0, 0, 0]
        assert Path(f"{db}-wal").stat().st_size == 0
        assert [e.position for e in take(stream, 2)] == [2, 3]


def test_watch_falls_back_to_polling_when_watching_fails(
    db: Path, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watchfiles

    def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
        raise OSError(28, "inotify watch limit reached")
        yield  # a generator, like watchfiles.watch

    monkeypatch.setattr(watchfiles, "watch", broken)
    writer.append("job-a", 1)
    with Follower.open(db, notify="watchfiles") as follower:
        stream = follower.events(timeout=DEADLINE)
        assert [e.position for e in take(stream, 1)] == [1]
        written = writer.append("job-a", 4)
        assert [e.event_id for e in take(stream, 4)] == written["ids"]
        hints = follower._hints
        assert isinstance(hints, WalWatchHints)
        assert not hints.watching and isinstance(hints.failure, OSError)


def test_the_async_follower_yields_live_events_and_stops_on_cancel(db: Path, writer: Writer) -> None:
    async def main() -> list[str]:
        got: list[str] = []
        with anyio.fail_after(DEADLINE), Follower.open(db) as follower:
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for event in follower.aevents():
                        got.append(event.event_id)
                        if len(got) == 6:
                            tg.cancel_scope.cancel()

                tg.start_soon(consume)
                await anyio.to_thread.run_sync(writer.append, "job-a", 6)
        return got

    ids = anyio.run(main)
    with EventLog.open(db) as log:
        assert ids == [e.event_id for e in log.read_all()]


def test_the_async_follower_stops_on_an_anyio_event(db: Path, writer: Writer) -> None:
    writer.append("job-a", 2)

    async def main() -> list[int]:
        stop = anyio.Event()
        got: list[int] = []
        with Follower.open(db) as follower:
            async for event in follower.aevents(stop=stop, timeout=DEADLINE):
                got.append(event.position)
                if len(got) == 2:
                    stop.set()
        return got

    assert anyio.run(main) == [1, 2]


def test_unknown_notification_method_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="use one of data_version, watchfiles"):
        Follower.open(db, notify="inotify")  # type: ignore[arg-type]
