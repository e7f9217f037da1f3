"""``build_server()``: our MCPServer with the backup tools; ``serve_stdio()`` runs it over stdio."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from plugin.log_setup import configure_logging
from plugin.mcp.mount import BackupPlugin, register

INSTRUCTIONS = (
    "Salesforce backups that run in the background. Call salesforce_backup to start one (it answers "
    "at once with a job id), then salesforce_backup_status(job_id) to follow it; salesforce_backup_list "
    "shows finished backups. Jobs and their history live in a local event log."
)


def build(home: Path | None = None) -> tuple[MCPServer, BackupPlugin]:
    """Our server and the plugin mounted on it: a bare MCPServer that ``register`` mounts on, as on any host's."""
    mounted: list[BackupPlugin] = []

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[BackupPlugin]:
        async with mounted[0].running() as plugin:
            yield plugin

    server: MCPServer = MCPServer(name="sfbackup", instructions=INSTRUCTIONS, version=_version(), lifespan=lifespan)
    mounted.append(register(server, home=home))
    return server, mounted[0]


def freeze_startup_heap() -> None:
    """Leave what the server made to start (modules, schemas, tools: ~110k objects) out of
    every later garbage collection. A full collection walks every tracked object, 60 ms of this
    machine's time at startup size: a pause that lands inside some tool call, rarely but surely, in
    a server that runs for days. What is frozen is never freed, and it is all needed till exit: so only
    a process that is the server alone calls it (``sfbackup serve``), never a host that mounts us."""
    gc.collect()  # what startup left as garbage is freed, not kept for good
    gc.freeze()


def build_server(home: Path | None = None) -> MCPServer:
    """Our MCP server (see ``build``)."""
    return build(home)[0]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("salesforce-backup-mcp")
    except PackageNotFoundError:
        return "0"


def serve_stdio(home: Path | None = None) -> None:
    """Serve MCP over stdio; logging was pointed at stderr first, since stdout is the protocol."""
    configure_logging()
    server = build_server(home)
    freeze_startup_heap()
    server.run("stdio")
