import os
import stat
from pathlib import Path

from events import EventLog
from events.codec import encode
from events.vocabulary import JobProgress


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_and_shm_files_are_owner_only_even_with_a_lax_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        db = tmp_path / "home" / "events.db"
        with EventLog.open(db) as log:
            log.append("job-a", [encode(JobProgress(phase="exporting", percent=1))], expected_version=0)
            assert {p.name: mode(p) for p in db.parent.iterdir()} == {
                "events.db": 0o600,
                "events.db-wal": 0o600,
                "events.db-shm": 0o600,
            }
        assert mode(db.parent) == 0o700
    finally:
        os.umask(previous)


def test_opening_an_existing_log_keeps_its_contents(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    with EventLog.open(db) as log:
        log.append("job-a", [encode(JobProgress(phase="exporting", percent=1))], expected_version=0)
    with EventLog.open(db) as log:
        assert [e.type for e in log.read_all(after=0)] == ["job.progress"]
