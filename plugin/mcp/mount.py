"""``register(server)``: mounts the backup tools and resources on any ``MCPServer``, ours or a host's.

Plain ``mcp`` has no ``mount`` or ``import_server``, and a lifespan is fixed when a server is built,
so a host that already has a server calls ``register`` and enters ``plugin.running()`` inside its
own lifespan; ``build_server`` does exactly the same for ours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from mcp.server.mcpserver import MCPServer

from events import EventLogError, new_job_id
from plugin import config
from plugin.errors import PluginError
from plugin.jobs.runtime import JobRuntime
from plugin.mcp.clientlog import ClientLog
from plugin.mcp.jobtools import add_job_tools
from plugin.mcp.notify import Subscriptions
from plugin.mcp.resources import add_resources
from plugin.mcp.starter import WorkerStarter
from plugin.mcp.tools import add_tools
from plugin.mcp.watch import JobWatch
from projections import ProjectionError

logger = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 1.0  # lost workers, forced cancels, queued jobs, due cleanups
RETENTION_SECONDS = 600.0  # the retention policy (also applied by every worker whose backup completed)


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

    def current(self) -> JobRuntime | None:
        """The runtime if it is open already, without waiting (for the event loop: opening checks the log)."""
        return self._runtime

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None


class BackupPlugin:
    """What ``register`` mounted: the job runtime, the resource subscriptions, the clients' log
    levels, the worker starter, and ``running()``."""

    def __init__(
        self, home: Path | None, subscriptions: Subscriptions, prefix: str, client_log: ClientLog | None = None
    ) -> None:
        self.runtime = RuntimeHolder(home)
        self.subscriptions = subscriptions
        self.client_log = client_log or ClientLog()
        self.prefix = prefix
        self.task_group: TaskGroup | None = None
        self.watch = JobWatch(self.publish, on_event=self.client_log.job_event)
        self.starter = WorkerStarter()
        self._stopping = False
        # JSON-RPC request ids restart with every connection; prefixed with this server's own id they
        # name one request for good (the correlation id an audit looks up).
        self.run_id = new_job_id()

    async def publish(self, uri: str) -> None:
        """Announce that a resource changed, to subscribers of both protocol eras."""
        await self.subscriptions.publish(uri)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BackupPlugin]:
        """Enter this in the server's lifespan: it hosts the plugin's background work and, on exit,
        cancels it and closes the event log.

        Background work lives in ``task_group`` as long as the lifespan: the watch that turns events
        of every process into resource notifications and wakes waiting tools, and the housekeeping
        that records lost workers (at start and every second), forces overdue cancels, starts queued
        jobs and cleans ended ones.
        """
        self._stopping = False
        async with anyio.create_task_group() as tg:
            self.task_group = tg
            tg.start_soon(self._background)
            try:
                yield self
            finally:
                self._stopping = True
                tg.cancel_scope.cancel()
                self.task_group = None
                self.starter.close()  # workers promised in answers start before the log closes
                self.runtime.close()

    async def _background(self) -> None:
        try:
            runtime = await anyio.to_thread.run_sync(self.runtime.get)
            head = runtime.log.head()[0]
        except (PluginError, EventLogError, OSError) as e:
            if not self._stopping:
                logger.error("no background work (watch, recovery, cleanup): %s", e)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch, runtime.log.path, head)
            tg.start_soon(self._housekeeping, runtime)

    async def _watch(self, path: Path, after: int) -> None:
        """Follow the log; a log it cannot read on (a damaged page, a row written around ``EventLog``)
        ends the watch, logged, not the server, whose tools answer on (a waiting status polls instead)."""
        try:
            await self.watch.run(path, after=after)
        except EventLogError as e:
            logger.error("stopped following the event log: no more job notifications from this server: %s", e)

    async def _housekeeping(self, runtime: JobRuntime) -> None:
        last_retention = -RETENTION_SECONDS
        while True:
            retention = time.monotonic() - last_retention >= RETENTION_SECONDS
            if retention:
                last_retention = time.monotonic()
            await anyio.to_thread.run_sync(partial(_housekeeping_once, runtime, retention=retention))
            await anyio.sleep(HOUSEKEEPING_SECONDS)


def _housekeeping_once(runtime: JobRuntime, *, retention: bool) -> None:
    """One round; a failure is logged and the next round tries again (the server must not fall over)."""
    try:
        done = runtime.housekeeping(retention=retention)
    except (PluginError, EventLogError, ProjectionError, OSError) as e:
        logger.warning("housekeeping round failed, trying again: %s", e)
        return
    except Exception:
        logger.exception("housekeeping round failed unexpectedly; trying again")
        return
    if any(done.values()):
        logger.info("housekeeping: %s", {k: v for k, v in done.items() if v})


def register(server: MCPServer, *, prefix: str = "", home: Path | None = None) -> BackupPlugin:
    """Mount the backup tools (named ``<prefix>salesforce_backup`` ...) and resources on ``server``.

    ``home`` overrides ``SFBACKUP_HOME``. Resource URIs stay ``backup://jobs/...`` whatever the prefix,
    since the tools hand them out. The returned plugin's ``running()`` belongs in the host's lifespan.
    """
    plugin = BackupPlugin(home, Subscriptions.install(server), prefix, ClientLog.install(server))
    add_tools(server, plugin)
    add_job_tools(server, plugin)
    add_resources(server, plugin)
    return plugin
