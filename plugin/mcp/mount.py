"""``register(server)``: mounts the backup tools and resources on any ``MCPServer``, ours or a host's.

Plain ``mcp`` has no ``mount`` or ``import_server``, and a lifespan is fixed when a server is built,
so a host that already has a server calls ``register`` and enters ``plugin.running()`` inside its
own lifespan; ``build_server`` does exactly the same for ours.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import TaskGroup
from mcp.server.mcpserver import MCPServer

from plugin import config
from plugin.jobs.runtime import JobRuntime
from plugin.mcp.notify import Subscriptions
from plugin.mcp.resources import add_resources
from plugin.mcp.tools import add_tools


class RuntimeHolder:
    """Opens the job runtime on first use, so a bad home is a tool error the model reads, not a crash."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home
        self._runtime: JobRuntime | None = None
        self._lock = threading.Lock()

    def get(self) -> JobRuntime:
        with self._lock:
            if self._runtime is None:
                self._runtime = JobRuntime(self._home or config.home_dir())
            return self._runtime

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None


class BackupPlugin:
    """What ``register`` mounted: the job runtime, the resource subscriptions, and ``running()``."""

    def __init__(self, home: Path | None, subscriptions: Subscriptions, prefix: str) -> None:
        self.runtime = RuntimeHolder(home)
        self.subscriptions = subscriptions
        self.prefix = prefix
        self.task_group: TaskGroup | None = None

    async def publish(self, uri: str) -> None:
        """Announce that a resource changed, to subscribers of both protocol eras."""
        await self.subscriptions.publish(uri)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BackupPlugin]:
        """Enter this in the server's lifespan: it hosts the plugin's background work and, on exit,
        cancels it and closes the event log.

        Background work (e.g. a watcher that publishes job updates written by worker processes)
        starts in ``task_group``; it lives as long as the server's lifespan.
        """
        async with anyio.create_task_group() as tg:
            self.task_group = tg
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
                self.task_group = None
                self.runtime.close()


def register(server: MCPServer, *, prefix: str = "", home: Path | None = None) -> BackupPlugin:
    """Mount the backup tools (named ``<prefix>salesforce_backup`` ...) and resources on ``server``.

    ``home`` overrides ``SFBACKUP_HOME``. Resource URIs stay ``backup://jobs/...`` whatever the prefix,
    since the tools hand them out. The returned plugin's ``running()`` belongs in the host's lifespan.
    """
    plugin = BackupPlugin(home, Subscriptions.install(server), prefix)
    add_tools(server, plugin)
    add_resources(server, plugin)
    return plugin
