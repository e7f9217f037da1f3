"""Documentation follows the code: every event type is in the README with the version producers write."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from events.vocabulary import PAYLOAD_CLASSES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.TYPE)
def test_every_event_type_is_in_the_readme_table_at_its_current_schema_version(cls: Any) -> None:
    row = re.search(rf"^\| `{re.escape(cls.TYPE)}` \| (\d+) \|", README, re.MULTILINE)
    assert row, f"add {cls.TYPE} to the event table in README.md"
    assert int(row.group(1)) == cls.SCHEMA_VERSION
