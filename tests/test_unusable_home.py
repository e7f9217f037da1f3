"""An SFBACKUP_HOME that cannot be used, or a damaged events.db: every shell says what is wrong and
what to do, and no traceback reaches the user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from plugin.cli import cli
from plugin.mcp.server import build_server


def blocked_home(tmp_path: Path) -> Path:
    """A home that cannot be created, even by root: its parent is a file."""
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    return tmp_path / "a-file" / "home"


def damaged_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "events.db").write_bytes(b"this is not an SQLite file at all" * 200)
    return home


def corrupted_home(tmp_path: Path) -> Path:
    """A real log with requested jobs, then every page after the first scrambled (a bad disk, a bad copy)."""
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    home = tmp_path / "home"
    env = {"SF_INSTANCE_URL": "https://example.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!secret"}
    runtime = JobRuntime(home, env=env)
    for _ in range(3):
        runtime.start_backup(validate_request(home=home, backup_type="incremental"), actor="test", spawn=False)
    runtime.close()
    data = bytearray((home / "events.db").read_bytes())
    for i in range(4096, len(data), 97):
        data[i] ^= 0x5A
    (home / "events.db").write_bytes(bytes(data))
    return home


def cli_error(home: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("command", [["status"], ["list"], ["events"], ["audit"], ["rebuild"], ["cancel", "x"]])
def test_cli_on_a_home_that_cannot_be_created_says_which_folder_and_what_to_do(
    tmp_path: Path, command: list[str]
) -> None:
    home = blocked_home(tmp_path)
    out = cli_error(home, *command)
    assert f"{home}" in out and "cannot be used" in out, out
    assert "SFBACKUP_HOME" in out


@pytest.mark.parametrize("command", [["status"], ["list"], ["events"], ["audit"], ["rebuild"]])
@pytest.mark.parametrize(("make", "words"), [(damaged_home, "not an SQLite database"), (corrupted_home, "damaged")])
def test_cli_on_a_damaged_event_log_points_to_verify_and_restore(
    tmp_path: Path, command: list[str], make: Any, words: str
) -> None:
    out = cli_error(make(tmp_path), *command)
    assert words in out, out
    assert "sfbackup verify" in out and "restore events.db" in out, out


def call(home: Path, tool: str, args: dict[str, Any]) -> Any:
    from mcp import Client

    async def go() -> Any:
        async with Client(build_server(home), mode="legacy") as client:  # type: ignore[arg-type]
            return await client.call_tool(tool, args)

    return anyio.run(go)


@pytest.mark.parametrize(
    ("make", "words"),
    [(blocked_home, "cannot be used"), (damaged_home, "sfbackup verify"), (corrupted_home, "sfbackup verify")],
)
def test_tools_on_an_unusable_home_answer_with_the_reason_not_an_internal_error(
    tmp_path: Path, make: Any, words: str
) -> None:
    result = call(make(tmp_path), "salesforce_backup_status", {})
    text = " ".join(getattr(b, "text", "") for b in result.content)
    assert result.is_error
    assert "Internal error" not in text and words in text, text
