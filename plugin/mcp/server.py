"""``build_server()``: our MCPServer with the backup tools; ``serve()`` runs it over stdio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from plugin.log_setup import configure_logging
from plugin.mcp.tools import RuntimeHolder, register

INSTRUCTIONS = (
    "Salesforce backups that run in the background. Call salesforce_backup to start one (it answers "
    "at once with a job id), then salesforce_backup_status(job_id) to follow it; salesforce_backup_list "
    "shows finished backups. Jobs and their history live in a local event log."
)


def build_server(home: Path | None = None) -> MCPServer:
    holder_box: list[RuntimeHolder] = []

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            for holder in holder_box:
                holder.close()

    server: MCPServer = MCPServer(name="sfbackup", instructions=INSTRUCTIONS, version=_version(), lifespan=lifespan)
    holder_box.append(register(server, home=home))
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("salesforce-backup-mcp")
    except PackageNotFoundError:
        return "0"


def serve_stdio(home: Path | None = None) -> None:
    """Serve MCP over stdio; logging was pointed at stderr first, since stdout is the protocol."""
    configure_logging()
    build_server(home).run("stdio")
