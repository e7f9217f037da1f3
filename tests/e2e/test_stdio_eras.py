"""`sfbackup serve` over stdio with the official client in both protocol eras (what hosts start)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.contract import TOOL_NAMES
from tests.support.processes import environ

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_stdio_server_speaks_both_eras(home: Path, tmp_path: Path, mode: str, version: str) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=environ())

    async def go() -> tuple[Any, ...]:
        with open(tmp_path / "stderr.log", "w", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
                tools = await client.list_tools()
                status = await client.call_tool("salesforce_backup_status", {})
                jobs = await client.read_resource("backup://jobs")
                return client.protocol_version, tools, status, jobs, client.server_capabilities

    negotiated, tools, status, jobs, capabilities = anyio.run(go)
    assert negotiated == version
    assert {t.name for t in tools.tools} == TOOL_NAMES
    assert all(t.output_schema and t.annotations for t in tools.tools)
    assert status.structured_content == {
        "job": None,
        "jobs": [],
        "total": 0,
        "offset": 0,
        "limit": 20,
        "next_offset": None,
    }
    assert '"total": 0' in jobs.contents[0].text
    assert capabilities.resources.subscribe is True
    assert (home / "events.db").is_file()  # SFBACKUP_HOME from the environment, as hosts pass it
