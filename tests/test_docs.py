"""Documentation follows the code: every event type is in the README with the version producers
write; every fault action, quirk key and generator key is in docs/fake-org.md."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest

from events.vocabulary import PAYLOAD_CLASSES
from plugin.fakeorg.faultrules import FaultRule
from plugin.fakeorg.generators import GENERATOR_KEYS
from plugin.fakeorg.quirks import QuirksConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FAKE_ORG = (ROOT / "docs" / "fake-org.md").read_text(encoding="utf-8")
FAULT_ACTIONS = [typing.get_args(cls.model_fields["action"].annotation)[0] for cls in typing.get_args(FaultRule)]


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.TYPE)
def test_every_event_type_is_in_the_readme_table_at_its_current_schema_version(cls: Any) -> None:
    row = re.search(rf"^\| `{re.escape(cls.TYPE)}` \| (\d+) \|", README, re.MULTILINE)
    assert row, f"add {cls.TYPE} to the event table in README.md"
    assert int(row.group(1)) == cls.SCHEMA_VERSION


def test_the_readme_links_the_fake_org_reference() -> None:
    assert "[docs/fake-org.md](docs/fake-org.md)" in README


@pytest.mark.parametrize("action", FAULT_ACTIONS)
def test_every_fault_action_has_a_row_in_the_fake_org_reference(action: str) -> None:
    assert re.search(rf"^\| `{action}` \|", FAKE_ORG, re.MULTILINE), f"add {action} to the fault rules table"


def test_the_fault_table_lists_only_actions_that_exist() -> None:
    section = FAKE_ORG.split("## Fault rules", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert rows[0] == "action" and rows[1:] == FAULT_ACTIONS  # the header, then one row per action in code order


@pytest.mark.parametrize("key", sorted(QuirksConfig.model_fields))
def test_every_quirk_key_is_in_the_fake_org_reference(key: str) -> None:
    assert re.search(rf"^\| `{key}` \|", FAKE_ORG, re.MULTILINE), f"add {key} to the quirks table"
    assert f'"{key}"' in FAKE_ORG, f"add {key} to the quirks example"


@pytest.mark.parametrize("key", sorted(GENERATOR_KEYS))
def test_every_generator_key_is_in_the_fake_org_example(key: str) -> None:
    assert f'"{key}"' in FAKE_ORG.split("## Generated volume", 1)[1].split("\n## ", 1)[0]


def test_every_sfbackup_variable_the_code_reads_is_in_the_readme() -> None:
    names: set[str] = set()
    for path in (ROOT / "plugin").rglob("*.py"):
        names |= set(re.findall(r'"(SFBACKUP_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    assert {"SFBACKUP_MAX_WORKERS", "SFBACKUP_CLEANUP_DELAY", "SFBACKUP_KEEP_BACKUPS"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert missing == [], f"document these in README.md: {missing}"
