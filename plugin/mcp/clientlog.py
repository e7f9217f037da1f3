"""Log messages for 2025-era clients: ``logging/setLevel`` and one ``notifications/message`` per job event.

A client that sets a level hears of every job's events at or above it (progress is ``debug``, a start
or an end ``info``/``notice``, an interruption or cancel ``warning``, a failure ``error``), as any
MCP host's log pane shows them. 2026-07-28 removed ``logging/setLevel`` (those clients follow jobs
with ``subscriptions/listen``), so the method is only served on handshake-era connections, which is
where the SDK's per-version gate routes it. MCPServer 2.3.0 has no public hook for the method: the
handler goes on its low-level server, as ``notify.Subscriptions`` does for ``resources/subscribe``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams

from events import RecordedEvent
from events.ids import job_id_of

logger = logging.getLogger(__name__)
LOGGER_NAME = "sfbackup.jobs"
LEVELS: tuple[LoggingLevel, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
EVENT_LEVELS: dict[str, LoggingLevel] = {
    "job.progress": "debug",
    "job.requested": "info",
    "job.started": "info",
    "job.cancel_requested": "info",
    "job.cleaned": "info",
    "job.completed": "notice",
    "job.interrupted": "warning",
    "job.cancelled": "warning",
    "job.failed": "error",
}
# What of an event's data a message repeats (counts and errors; never options or paths).
SUMMARY_FIELDS = ("attempt", "phase", "percent", "objects_done", "objects_total", "records", "files", "bytes")
ERROR_FIELDS = ("error_code", "message", "retryable", "reason", "forced")


class ClientLog:
    """The level each legacy connection asked for; a connection is forgotten when it closes."""

    def __init__(self) -> None:
        self._levels: dict[Connection, int] = {}
        # Positions are global and only grow: an event at or below this one was sent already (by
        # another lifespan's watch: in-process clients each run one).
        self._sent_upto = 0

    @classmethod
    def install(cls, server: MCPServer) -> ClientLog:
        """Serve ``logging/setLevel`` on ``server`` (which makes it advertise ``logging`` to 2025-era
        clients), unless a host server serves it already: then its own handler stays in charge."""
        client_log = cls()
        lowlevel = server._lowlevel_server
        if lowlevel.get_request_handler("logging/setLevel") is None:
            lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, client_log._on_set_level)
        return client_log

    def listeners(self) -> int:
        """Connections that set a level."""
        return len(self._levels)

    async def _on_set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        # ``ctx.session`` is a per-request proxy; messages go to the connection behind it (see notify.py).
        connection: Connection = ctx.session._connection
        if connection not in self._levels:
            connection.exit_stack.callback(self._levels.pop, connection, None)
        self._levels[connection] = LEVELS.index(params.level)
        return EmptyResult()

    async def job_event(self, event: RecordedEvent) -> None:
        """Send ``event`` to every connection whose level it reaches."""
        level = EVENT_LEVELS.get(event.type)
        if level is None or not self._levels or event.position <= self._sent_upto:
            return
        self._sent_upto = event.position
        rank = LEVELS.index(level)
        data = message_data(event)
        for connection, wanted in list(self._levels.items()):
            if rank < wanted:
                continue
            try:
                with warnings.catch_warnings():
                    # Deprecated with the 2026 revision; still the spec's way on the connections served here.
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await connection.log(level, data, logger=LOGGER_NAME)
            except Exception as e:  # a broken connection: forget it, keep telling the others
                logger.info("dropping a log listener: %s", type(e).__name__)
                self._levels.pop(connection, None)


def message_data(event: RecordedEvent) -> dict[str, Any]:
    """The message's ``data``: which job, what happened, where in the log, and its counts or error."""
    job_id = job_id_of(event.stream_id)
    data: dict[str, Any] = {
        "message": f"job {job_id}: {event.type.removeprefix('job.').replace('_', ' ')}",
        "job_id": job_id,
        "event": event.type,
        "position": event.position,
    }
    payload = event.data if isinstance(event.data, dict) else {}
    for field in (*SUMMARY_FIELDS, *ERROR_FIELDS):
        if payload.get(field) is not None:
            data[field] = payload[field]
    return data
