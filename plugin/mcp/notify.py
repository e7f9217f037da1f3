"""Resource subscriptions in both protocol eras, and ``publish(uri)``: the one way to announce a change.

2026-07-28 clients listen with ``subscriptions/listen``, which ``MCPServer`` serves from its bus;
2025-era clients call ``resources/subscribe``, which ``MCPServer`` has no public hook for, so the
handlers go on its low-level server (the workaround of the SDK's migration guide). ``publish``
sends to both, since neither channel reaches the other era's clients.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

logger = logging.getLogger(__name__)

MAX_URI_LENGTH = 2048
MAX_URIS_PER_CONNECTION = 1000


class Subscriptions:
    """Which legacy connections subscribed to which URI, plus the server's 2026 bus.

    A connection is forgotten when it closes (a callback on its exit stack), so a long-running HTTP
    server keeps no dead subscribers. Any URI is accepted, as ``subscriptions/listen`` accepts any:
    one that never changes never fires.
    """

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self._by_uri: dict[str, set[Connection]] = {}
        self._by_connection: dict[Connection, set[str]] = {}

    @classmethod
    def install(cls, server: MCPServer) -> Subscriptions:
        """Serve ``resources/subscribe`` and ``resources/unsubscribe`` on ``server``; publish on its bus.

        Both reach into private attributes: MCPServer 2.3.0 exposes neither its bus nor a subscribe hook
        (modelcontextprotocol/python-sdk docs/migration.md, "resources/subscribe"). Registering the
        handler also makes the server advertise ``resources.subscribe: true`` to 2025-era clients.
        """
        subscriptions = cls(server._subscriptions)
        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscriptions._on_subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, subscriptions._on_unsubscribe)
        return subscriptions

    def subscribers(self, uri: str) -> int:
        """How many legacy connections currently wait for updates of ``uri``."""
        return len(self._by_uri.get(uri, ()))

    async def publish(self, uri: str) -> None:
        """Tell every subscriber of ``uri``, in both eras, that it changed (they re-read it)."""
        await self._bus.publish(ResourceUpdated(uri=uri))
        for connection in list(self._by_uri.get(uri, ())):
            try:
                await connection.send_resource_updated(uri)
            except Exception as e:  # a broken connection: forget it, keep telling the others
                logger.info("dropping a subscriber of %s: %s", uri, type(e).__name__)
                self._forget(connection)

    async def _on_subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        uri = _checked(str(params.uri))
        connection = _connection(ctx)
        followed = self._by_connection.get(connection)
        if followed is None:
            followed = self._by_connection[connection] = set()
            connection.exit_stack.callback(self._forget, connection)
        if uri not in followed and len(followed) >= MAX_URIS_PER_CONNECTION:
            raise MCPError(
                INVALID_PARAMS,
                f"This connection already follows {len(followed)} resources; unsubscribe from finished jobs first.",
            )
        followed.add(uri)
        self._by_uri.setdefault(uri, set()).add(connection)
        return EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        uri = _checked(str(params.uri))
        connection = _connection(ctx)
        self._by_connection.get(connection, set()).discard(uri)
        self._drop(uri, connection)
        return EmptyResult()

    def _forget(self, connection: Connection) -> None:
        for uri in self._by_connection.pop(connection, set()):
            self._drop(uri, connection)

    def _drop(self, uri: str, connection: Connection) -> None:
        connections = self._by_uri.get(uri)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_uri[uri]


def _connection(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # ``ctx.session`` is a per-request proxy; the connection behind it is the per-client object that
    # outlives the request (and carries the standalone stream). SDK 2.3.0 has no public accessor.
    connection: Connection = ctx.session._connection
    return connection


def _checked(uri: str) -> str:
    if len(uri) > MAX_URI_LENGTH:
        raise MCPError(INVALID_PARAMS, f"Resource URI is {len(uri)} characters long; at most {MAX_URI_LENGTH}.")
    return uri
