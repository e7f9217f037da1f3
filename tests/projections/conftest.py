from collections.abc import Iterator
from pathlib import Path

import pytest

from events import EventLog

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog.open(tmp_path / "events.db") as opened:
        yield opened
