"""Resource subscriptions in both protocol eras, and ``publish(uri)`` reaching each era's subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPDeprecationWarning
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceUpdatedNotification

from plugin.mcp.notify import MAX_URI_LENGTH
from plugin.mcp.server import build

JOB = "backup://jobs/01jobaaaaaaaaaaaaaaaaaaaaa"
OTHER = "backup://jobs/01jobbbbbbbbbbbbbbbbbbbbbb"


class Inbox:
    """Collects resource-updated notifications; ``wait_for`` blocks until one for a URI arrived."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, uri: str) -> None:
        with anyio.fail_after(5):
            while uri not in self.uris:
                await self._changed.wait()


async def subscribe(client: Client, uri: str) -> None:
    with pytest.warns(MCPDeprecationWarning):
        await client.session.subscribe_resource(uri)


async def unsubscribe(client: Client, uri: str) -> None:
    with pytest.warns(MCPDeprecationWarning):
        await client.session.unsubscribe_resource(uri)


def test_legacy_clients_see_subscribe_capability_and_get_updates_until_they_unsubscribe(home: Path) -> None:
    server, plugin = build(home)
    inbox = Inbox()

    async def go() -> None:
        async with Client(server, mode="legacy", message_handler=inbox) as client:
            assert client.protocol_version == "2025-11-25"
            assert client.server_capabilities.resources.subscribe is True
            await subscribe(client, JOB)
            await subscribe(client, OTHER)
            assert plugin.subscriptions.subscribers(JOB) == 1
            await plugin.publish(JOB)
            await inbox.wait_for(JOB)
            await unsubscribe(client, JOB)
            assert plugin.subscriptions.subscribers(JOB) == 0
            await plugin.publish(JOB)
            await plugin.publish(OTHER)
            # Notifications arrive in order: once OTHER's is in, a second JOB one would be too.
            await inbox.wait_for(OTHER)

    anyio.run(go)
    assert inbox.uris == [JOB, OTHER]


def test_modern_listeners_get_updates_of_the_uris_they_listen_to(home: Path) -> None:
    server, plugin = build(home)

    async def go() -> list[str]:
        async with Client(server) as client, client.listen(resource_subscriptions=[JOB]) as sub:
            assert client.protocol_version == "2026-07-28"
            await plugin.publish(OTHER)
            await plugin.publish(JOB)
            with anyio.fail_after(5):
                event = await sub.__anext__()
            return [event.uri]  # type: ignore[attr-defined]

    assert anyio.run(go) == [JOB]


def test_one_publish_reaches_both_eras_at_once(home: Path) -> None:
    server, plugin = build(home)
    inbox = Inbox()

    async def go() -> str:
        async with (
            Client(server, mode="legacy", message_handler=inbox) as legacy,
            Client(server) as modern,
            modern.listen(resource_subscriptions=[JOB]) as sub,
        ):
            await subscribe(legacy, JOB)
            await plugin.publish(JOB)
            await inbox.wait_for(JOB)
            with anyio.fail_after(5):
                event = await sub.__anext__()
            return str(event.uri)  # type: ignore[attr-defined]

    assert anyio.run(go) == JOB


def test_a_closed_legacy_connection_is_forgotten(home: Path) -> None:

    server, plugin = build(home)

    async def go() -> None:
        async with Client(server, mode="legacy") as client:
            await subscribe(client, JOB)
            assert plugin.subscriptions.subscribers(JOB) == 1
        await plugin.publish(JOB)  # nobody left to tell, and no error

    anyio.run(go)
    assert plugin.subscriptions.subscribers(JOB) == 0


def test_an_oversized_uri_is_refused_with_a_protocol_error(home: Path) -> None:
    server, _ = build(home)

    async def go() -> None:
        async with Client(server, mode="legacy") as client:
            with pytest.raises(MCPError, match="at most 2048"):
                await subscribe(client, "backup://jobs/" + "x" * MAX_URI_LENGTH)
            await subscribe(client, JOB)  # the connection is still usable

    anyio.run(go)
