"""Opening the log again in a process that already has it open must not drop that process's locks.

Closing any descriptor of a database file releases every POSIX lock the process holds on it, those of
its other SQLite connections included. A WAL-mode connection holds a shared lock on the database file
for as long as it is open; once that is silently gone, another process closing its connection believes
it is the last one, checkpoints and deletes the ``-wal`` and ``-shm`` files under the running
connections, and the log ends up "malformed" (seen when a server opened its Follower beside its runtime).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from events import EventLog, NewEvent

OPEN_AND_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT COUNT(*) FROM events").fetchone()
conn.close()
"""


def test_a_second_open_keeps_the_first_connections_locks(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    wal = tmp_path / "events.db-wal"
    with EventLog.open(path) as first:
        first.append("s-1", [NewEvent("job.cleaned", {})], expected_version=0)
        with EventLog.open(path) as second:  # e.g. a Follower opened beside the runtime's connection
            subprocess.run([sys.executable, "-c", OPEN_AND_CLOSE, str(path)], check=True, timeout=60)
            assert wal.exists()  # still in use by this process: the other one did not think it was the last
            second.append("s-1", [NewEvent("job.cleaned", {})], expected_version=1)
        first.append("s-1", [NewEvent("job.cleaned", {})], expected_version=2)
        assert [e.stream_version for e in first.read_stream("s-1")] == [1, 2, 3]
        assert first.verify().ok
