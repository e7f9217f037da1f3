"""The stores the append/read benchmark compares, each behind the same three calls.

``single(path, n)``, ``batched(path, n, batch)`` and ``read_all(path)`` each return the seconds
their loop took (setup excluded). Every producer builds and serialises its events inside the timed
loop, as a real one must. All files are on disk, in WAL mode, at the same ``synchronous`` setting.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workload import plan, progress_payload
from events import EventLog, NewEvent

PER_STREAM = 100


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


SYNCHRONOUS = "FULL"  # what events/log.py uses; every variant here runs at it


@dataclass(frozen=True)
class Store:
    name: str
    description: str
    single: Callable[[Path, int], float]
    batched: Callable[[Path, int, int], float]
    read_all: Callable[[Path], tuple[float, int]]
    synchronous: Callable[[Path], str]


_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# -- ours ----------------------------------------------------------------------------------------


def _ours_single(path: Path, n: int) -> float:
    with EventLog.open(path, sync_every_commit=True) as log:  # every store at FULL
        versions: dict[str, int] = {}
        start = time.perf_counter()
        for s, v in plan(n, PER_STREAM):
            stream = f"job-{s:05d}"
            event = NewEvent("job.progress", progress_payload(v))
            log.append(stream, [event], expected_version=versions.get(stream, 0))
            versions[stream] = v + 1
        return time.perf_counter() - start


def _ours_batched(path: Path, n: int, batch: int) -> float:
    with EventLog.open(path, sync_every_commit=True) as log:  # every store at FULL
        steps = plan(n, PER_STREAM)
        start = time.perf_counter()
        for i in range(0, len(steps), batch):
            chunk = steps[i : i + batch]
            stream = f"job-{chunk[0][0]:05d}"
            events = [NewEvent("job.progress", progress_payload(v)) for _, v in chunk]
            log.append(stream, events, expected_version=chunk[0][1])
        return time.perf_counter() - start


def ours_prebuilt(path: Path, n: int, batch: int) -> float:
    """Batched appends of NewEvents made before the clock starts: the log without the producer's share."""
    steps = plan(n, PER_STREAM)
    batches = [
        (
            f"job-{steps[i][0]:05d}",
            steps[i][1],
            [NewEvent("job.progress", progress_payload(v)) for _, v in steps[i : i + batch]],
        )
        for i in range(0, len(steps), batch)
    ]
    with EventLog.open(path, sync_every_commit=True) as log:
        start = time.perf_counter()
        for stream, expected, events in batches:
            log.append(stream, events, expected_version=expected)
        return time.perf_counter() - start


def schema_floor(path: Path, n: int, batch: int) -> float:
    """Our schema's SQLite work alone: the rows ours writes, copied in batches with INSERT ... SELECT.

    Every trigger, CHECK and index of events/schema.py is in place and synchronous is FULL; no
    Python runs per row. What the log itself could reach if its Python cost nothing.
    """
    source = path.with_name(path.stem + "-source.db")
    _ours_batched(source, n, batch)
    with EventLog.open(path):
        pass  # creates the schema
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        columns = (
            "event_id, stream_id, stream_version, type, schema_version, data, metadata, correlation_id, "
            "causation_id, occurred_at, recorded_at, prev_hash, hash"
        )
        copy = (
            f"INSERT INTO main.events ({columns}) "
            f"SELECT {columns} FROM source.events WHERE id BETWEEN ? AND ? ORDER BY id"
        )
        start = time.perf_counter()
        for first in range(1, n + 1, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(copy, (first, first + batch - 1))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        assert conn.execute("SELECT COUNT(*) FROM main.events").fetchone()[0] == n
        return elapsed
    finally:
        conn.close()


def _ours_read(path: Path) -> tuple[float, int]:
    with EventLog.open(path) as log:
        start = time.perf_counter()
        position = count = 0
        while page := log.read_all(after=position, limit=1000):
            count += len(page)
            position = page[-1].position
        return time.perf_counter() - start, count


def _ours_sync(path: Path) -> str:
    with EventLog.open(path) as log:
        return _SYNC_NAMES[int(log.query("PRAGMA synchronous")[0]["synchronous"])]


# -- raw sqlite3 ---------------------------------------------------------------------------------

RAW_DDL = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
    "stream_version INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (stream_id, stream_version))"
)
_RAW_INSERT = "INSERT INTO events (stream_id, stream_version, type, data) VALUES (?, ?, ?, ?)"


def _raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    conn.execute(RAW_DDL)
    return conn


def _raw_single(path: Path, n: int) -> float:
    conn = _raw_connect(path)
    try:
        start = time.perf_counter()
        for s, v in plan(n, PER_STREAM):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_RAW_INSERT, (f"job-{s:05d}", v + 1, "job.progress", _json(progress_payload(v))))
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def _raw_batched(path: Path, n: int, batch: int) -> float:
    conn = _raw_connect(path)
    try:
        steps = plan(n, PER_STREAM)
        start = time.perf_counter()
        for i in range(0, len(steps), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                _RAW_INSERT,
                [(f"job-{s:05d}", v + 1, "job.progress", _json(progress_payload(v))) for s, v in steps[i : i + batch]],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def _raw_read(path: Path) -> tuple[float, int]:
    conn = _raw_connect(path)
    try:
        start = time.perf_counter()
        position = count = 0
        while rows := conn.execute(
            "SELECT id, stream_id, stream_version, type, data FROM events WHERE id > ? ORDER BY id LIMIT 1000",
            (position,),
        ).fetchall():
            decoded = [(i, s, v, t, json.loads(d)) for i, s, v, t, d in rows]
            count += len(decoded)
            position = rows[-1][0]
        return time.perf_counter() - start, count
    finally:
        conn.close()


def _raw_sync(path: Path) -> str:
    conn = _raw_connect(path)
    try:
        return _SYNC_NAMES[int(conn.execute("PRAGMA synchronous").fetchone()[0])]
    finally:
        conn.close()


RAW = Store(
    "raw sqlite3",
    f"WAL, synchronous={SYNCHRONOUS}, BEGIN IMMEDIATE, executemany for batches, json.dumps per event; "
    "plain table (INTEGER PRIMARY KEY, UNIQUE(stream_id, stream_version), no triggers/CHECKs/hash)",
    _raw_single,
    _raw_batched,
    _raw_read,
    _raw_sync,
)
OURS = Store(
    "ours (EventLog)",
    "events/log.py as shipped: NewEvent (UUIDv7, occurred_at), idempotency, expected version, "
    "SHA-256 chain, UPDATE/DELETE guard triggers, version and hash CHECKs; read_all -> RecordedEvent",
    _ours_single,
    _ours_batched,
    _ours_read,
    _ours_sync,
)


# -- eventsourcing -------------------------------------------------------------------------------


def eventsourcing_stores() -> list[Store]:
    """The eventsourcing Application (the library as its users write it) and its bare recorder.

    Raises:
        ImportError: the library is not installed (``pip install -e '.[bench]'``).
    """
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import StoredEvent

    class BenchJob(Aggregate):  # type: ignore[misc]
        @event("Progressed")  # type: ignore[untyped-decorator]
        def progress(self, data: dict[str, Any]) -> None:
            self.last = data

    class BenchApp(Application):  # type: ignore[misc]
        log_section_size = 1000  # the default of 10 makes reads ~1.5x slower

    def app(path: Path) -> Any:
        return BenchApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})

    def app_single(path: Path, n: int) -> float:
        application = app(path)
        try:
            jobs: dict[int, Any] = {}
            start = time.perf_counter()
            for s, v in plan(n, PER_STREAM):
                if s not in jobs:
                    jobs[s] = BenchJob()  # its Created event is the stream's first event
                else:
                    jobs[s].progress(progress_payload(v))
                application.save(jobs[s])
            return time.perf_counter() - start
        finally:
            application.close()

    def app_batched(path: Path, n: int, batch: int) -> float:
        application = app(path)
        try:
            steps = plan(n, PER_STREAM)
            jobs: dict[int, Any] = {}
            start = time.perf_counter()
            for i in range(0, len(steps), batch):
                touched: dict[int, Any] = {}
                for s, v in steps[i : i + batch]:
                    if s not in jobs:
                        jobs[s] = BenchJob()
                    else:
                        jobs[s].progress(progress_payload(v))
                    touched[s] = jobs[s]
                application.save(*touched.values())
            return time.perf_counter() - start
        finally:
            application.close()

    def app_read(path: Path) -> tuple[float, int]:
        application = app(path)
        try:
            start = time.perf_counter()
            position = 1
            count = 0
            while notifications := application.notification_log.select(position, 1000):
                decoded = [application.mapper.to_domain_event(item) for item in notifications]
                count += len(decoded)
                position = notifications[-1].id + 1
            return time.perf_counter() - start, count
        finally:
            application.close()

    def app_sync(path: Path) -> str:
        application = app(path)
        try:
            with application.factory.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA synchronous")
                return _SYNC_NAMES[int(cursor.fetchone()[0])]
        finally:
            application.close()

    def stored(s: int, v: int) -> Any:
        state = _json(progress_payload(v)).encode("utf-8")
        return StoredEvent(
            originator_id=_stream_uuid(s), originator_version=v + 1, topic="bench:Progressed", state=state
        )

    def recorder_single(path: Path, n: int) -> float:
        application = app(path)
        try:
            start = time.perf_counter()
            for s, v in plan(n, PER_STREAM):
                application.recorder.insert_events([stored(s, v)])
            return time.perf_counter() - start
        finally:
            application.close()

    def recorder_batched(path: Path, n: int, batch: int) -> float:
        application = app(path)
        try:
            steps = plan(n, PER_STREAM)
            start = time.perf_counter()
            for i in range(0, len(steps), batch):
                application.recorder.insert_events([stored(s, v) for s, v in steps[i : i + batch]])
            return time.perf_counter() - start
        finally:
            application.close()

    def recorder_read(path: Path) -> tuple[float, int]:
        application = app(path)
        try:
            start = time.perf_counter()
            position = 1
            count = 0
            while notifications := application.recorder.select_notifications(position, 1000):
                decoded = [json.loads(item.state) for item in notifications]
                count += len(decoded)
                position = notifications[-1].id + 1
            return time.perf_counter() - start, count
        finally:
            application.close()

    return [
        Store(
            "eventsourcing Application",
            "Application + Aggregate (@event), its SQLite persistence (PERSISTENCE_MODULE=eventsourcing.sqlite, "
            "file SQLITE_DBNAME), library defaults; read = notification log sections of 1000 -> domain events",
            app_single,
            app_batched,
            app_read,
            app_sync,
        ),
        Store(
            "eventsourcing recorder",
            "its SQLiteApplicationRecorder.insert_events with StoredEvent rows (json.dumps per event), "
            "no aggregate or mapper; reference only",
            recorder_single,
            recorder_batched,
            recorder_read,
            app_sync,
        ),
    ]


def _stream_uuid(s: int) -> uuid.UUID:
    return uuid.UUID(int=s + 1)
