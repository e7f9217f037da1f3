from collections.abc import Iterator
from pathlib import Path

import pytest

from events import EventLog


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "events.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[EventLog]:
    with EventLog.open(db_path) as opened:
        yield opened
