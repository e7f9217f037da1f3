"""``sfbackup serve --http``: streamable HTTP on 127.0.0.1 with Host/Origin checks and stateful sessions."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from mcp import Client, MCPDeprecationWarning

from plugin.mcp.http import bind, http_app, url_of
from plugin.mcp.server import build
from tests.mcp.test_subscriptions import JOB, Inbox
from tests.support.contract import TOOL_NAMES
from tests.support.processes import http_server

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with http_server(tmp_path_factory.mktemp("http") / "home") as served:
        yield served


def post(url: str, headers: dict[str, str], body: dict[str, Any] = INITIALIZE) -> http.client.HTTPResponse:
    """A raw POST, with the Host header under the test's control (http.client lets it be overridden)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", parts.path, skip_host=True, skip_accept_encoding=True)
    payload = json.dumps(body).encode()
    sent = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Content-Length": str(len(payload)),
        **headers,
    }
    for key, value in sent.items():
        conn.putheader(key, value)
    conn.endheaders(payload)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_serve_http_listens_on_loopback_at_mcp(url: str) -> None:
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/mcp")
    assert parts.port


def test_a_plain_initialize_is_answered_and_opens_a_session(url: str) -> None:
    response = post(url, {})
    assert response.status == 200
    assert response.getheader("mcp-session-id")
    assert response.getheader("content-type", "").startswith("text/event-stream")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", "localhost.evil.example"])
def test_a_foreign_host_header_gets_421(url: str, host: str) -> None:
    assert post(url, {"Host": host}).status == 421


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1.evil.example", "null"])
def test_a_foreign_origin_gets_403(url: str, origin: str) -> None:
    assert post(url, {"Origin": origin}).status == 403


@pytest.mark.parametrize("origin", ["http://localhost:6274", "http://127.0.0.1:5173"])
def test_a_loopback_origin_is_allowed(url: str, origin: str) -> None:
    assert post(url, {"Origin": origin}).status == 200


def test_the_same_host_with_localhost_name_is_allowed(url: str) -> None:
    assert post(url, {"Host": f"localhost:{urlsplit(url).port}"}).status == 200


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_mcp_client_over_http_in_both_eras(url: str, mode: str, version: str) -> None:
    async def go() -> tuple[str, Any, Any]:
        async with Client(url, mode=mode) as client:
            tools = await client.list_tools()
            status = await client.call_tool("salesforce_backup_status", {"job_id": "nope"})
            return client.protocol_version, tools, status

    negotiated, tools, status = anyio.run(go)
    assert negotiated == version
    assert {t.name for t in tools.tools} == TOOL_NAMES
    assert status.is_error and "No job with id 'nope'" in status.content[0].text


def test_a_port_in_use_is_a_clear_error() -> None:
    from plugin.errors import ConfigError

    taken = bind(0)
    try:
        with pytest.raises(ConfigError, match="pick another --port"):
            bind(taken.getsockname()[1])
    finally:
        taken.close()


def test_legacy_subscribers_over_http_get_updates_on_their_session(home: Path) -> None:
    """Stateful HTTP: the notification rides the session's standalone GET stream."""
    import uvicorn

    server, plugin = build(home)
    sock: socket.socket = bind(0)
    app = http_app(server, sock.getsockname()[1])
    inbox = Inbox()

    async def go() -> None:
        web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(web.serve, [sock])
            async with Client(url_of(sock), mode="legacy", message_handler=inbox) as client:
                with pytest.warns(MCPDeprecationWarning):
                    await client.session.subscribe_resource(JOB)
                assert plugin.subscriptions.subscribers(JOB) == 1
                await plugin.publish(JOB)
                await inbox.wait_for(JOB)
            web.should_exit = True

    try:
        anyio.run(go)
    finally:
        sock.close()
    assert inbox.uris == [JOB]
