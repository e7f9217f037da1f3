"""``register(server)`` on a host's own MCPServer that has tools of its own, in both protocol eras."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from plugin.mcp import BackupPlugin, register
from tests.support.contract import TOOL_NAMES

MODES = ["legacy", "auto"]
OURS = sorted(TOOL_NAMES)


def host_server(home: Path, prefix: str) -> tuple[MCPServer, BackupPlugin, list[str]]:
    """A host with its own lifespan and tool; it enters ``plugin.running()`` inside its lifespan."""
    seen: list[str] = []
    box: list[BackupPlugin] = []

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[dict[str, Any]]:
        seen.append("host up")
        async with box[0].running() as plugin:
            seen.append("plugin running" if plugin.task_group is not None else "no task group")
            yield {"plugin": plugin}
        seen.append("plugin stopped" if plugin.task_group is None else "still running")

    server = MCPServer(name="host", lifespan=lifespan)

    @server.tool()
    def host_echo(text: str) -> str:
        """The host's own tool."""
        return text.upper()

    box.append(register(server, prefix=prefix, home=home))
    return server, box[0], seen


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", ["", "sf_"])
def test_host_keeps_its_tool_and_gains_ours_under_the_prefix(home: Path, mode: str, prefix: str) -> None:
    server, plugin, seen = host_server(home, prefix)

    async def go() -> tuple[Any, ...]:
        async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
            tools = await client.list_tools()
            echo = await client.call_tool("host_echo", {"text": "hi"})
            status = await client.call_tool(f"{prefix}salesforce_backup_status", {})
            templates = await client.list_resource_templates()
            jobs = await client.read_resource("backup://jobs")
            return tools, echo, status, templates, jobs, client.server_capabilities

    tools, echo, status, templates, jobs, capabilities = anyio.run(go)
    assert sorted(t.name for t in tools.tools) == sorted(["host_echo", *(prefix + n for n in OURS)])
    assert echo.structured_content == {"result": "HI"}
    assert status.structured_content["total"] == 0 and not status.is_error
    assert [(t.name, t.uri_template) for t in templates.resource_templates] == [
        (f"{prefix}job", "backup://jobs/{job_id}")
    ]
    assert '"total": 0' in jobs.contents[0].text
    assert capabilities.resources.subscribe is True
    assert seen == ["host up", "plugin running", "plugin stopped"]
    assert plugin.prefix == prefix


def test_tool_answers_use_the_registered_home(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    elsewhere = tmp_path / "elsewhere"
    runtime = JobRuntime(elsewhere)
    job = runtime.start_backup(validate_request(home=elsewhere, backup_type="full"), spawn=False)
    runtime.close()
    server, _, _ = host_server(elsewhere, "x_")

    async def go() -> Any:
        async with Client(server, mode="legacy") as client:
            return await client.call_tool("x_salesforce_backup_status", {})

    listing = anyio.run(go)
    assert [j["job_id"] for j in listing.structured_content["jobs"]] == [job.job_id]
    assert not (home / "events.db").exists()  # SFBACKUP_HOME was not touched
