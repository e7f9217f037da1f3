"""``logging/setLevel`` on 2025-era connections: job events arrive as ``notifications/message`` at or
above the level each client set; 2026 connections, where the method is gone, are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.types import LoggingMessageNotificationParams

from plugin.mcp.mount import register
from plugin.mcp.server import build, build_server
from tests.conftest import sf_env
from tests.jobs.support import SMALL, fake_org

pytestmark = pytest.mark.e2e


class Messages:
    def __init__(self) -> None:
        self.seen: list[LoggingMessageNotificationParams] = []

    async def __call__(self, params: LoggingMessageNotificationParams) -> None:
        self.seen.append(params)

    def events(self) -> list[str]:
        return [m.data["event"] for m in self.seen if isinstance(m.data, dict)]


async def set_level(client: Client, level: Any) -> None:
    with pytest.warns(MCPDeprecationWarning):
        await client.set_logging_level(level)


def test_legacy_clients_hear_job_events_at_or_above_their_level(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info, errors = Messages(), Messages()

    async def go() -> tuple[str, Any]:
        server, plugin = build(home)
        async with (
            Client(server, mode="legacy", logging_callback=info) as listener,
            Client(server, mode="legacy", logging_callback=errors) as picky,
        ):
            with anyio.fail_after(30):
                while not plugin.watch.running:  # the watch follows from the head it finds at start
                    await anyio.sleep(0.02)
            assert listener.server_capabilities.logging is not None
            await set_level(listener, "info")
            await set_level(picky, "error")
            result = await listener.call_tool("salesforce_backup", {"backup_type": "full", **SMALL})
            assert result.structured_content is not None, result.content
            job = str(result.structured_content["job_id"])
            with anyio.fail_after(60):
                while "job.completed" not in info.events():
                    await anyio.sleep(0.05)
            status = json.loads((await listener.read_resource(f"backup://jobs/{job}")).contents[0].text)  # type: ignore[union-attr]
            return job, status

    with fake_org() as fake:
        for key, value in sf_env(fake).items():
            monkeypatch.setenv(key, value)
        job, status = anyio.run(go)
    assert status["status"] == "completed"
    # No progress (debug) at level info; the job's life in order, each naming the job and its position.
    assert info.events() == ["job.requested", "job.started", "job.completed"]
    assert all(m.logger == "sfbackup.jobs" and m.data["job_id"] == job for m in info.seen)  # type: ignore[index]
    levels = [m.level for m in info.seen]
    assert levels == ["info", "info", "notice"]
    completed = info.seen[-1].data
    assert completed["message"] == f"job {job}: completed"  # type: ignore[index]
    assert completed["records"] == status["records"] and completed["records"] > 0  # type: ignore[index]
    positions = [m.data["position"] for m in info.seen]  # type: ignore[index]
    assert positions == sorted(positions)
    assert errors.seen == []  # nothing failed: a client at "error" hears nothing


def test_a_failed_job_is_an_error_message(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = Messages()

    async def go() -> None:
        async with Client(build_server(home), mode="legacy", logging_callback=errors) as client:
            await set_level(client, "error")
            result = await client.call_tool("salesforce_backup", {"backup_type": "full", **SMALL})
            assert result.structured_content is not None, result.content
            with anyio.fail_after(60):
                while not errors.seen:
                    await anyio.sleep(0.05)

    with fake_org() as fake:
        for key, value in sf_env(fake).items():
            monkeypatch.setenv(key, value)
        fake.add_fault({"action": "respond", "status": 500, "path": "/describe", "sobject": "Account"})
        anyio.run(go)
    assert errors.events() == ["job.failed"] and errors.seen[0].level == "error"
    assert errors.seen[0].data["error_code"]  # type: ignore[index]


def test_2026_connections_have_no_set_level(home: Path) -> None:
    async def go() -> None:
        async with Client(build_server(home)) as client:
            with pytest.warns(MCPDeprecationWarning), pytest.raises(MCPError, match="Method not found"):
                await client.set_logging_level("info")

    anyio.run(go)


def test_a_host_servers_own_set_level_handler_stays_in_charge(home: Path) -> None:
    host = MCPServer(name="host")
    calls: list[str] = []

    async def own(ctx: Any, params: Any) -> Any:
        from mcp.types import EmptyResult

        calls.append(params.level)
        return EmptyResult()

    from mcp.types import SetLevelRequestParams

    host._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, own)
    plugin = register(host, home=home)

    async def go() -> None:
        async with Client(host, mode="legacy") as client:
            await set_level(client, "warning")

    anyio.run(go)
    assert calls == ["warning"] and plugin.client_log.listeners() == 0
