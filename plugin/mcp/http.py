"""``serve_http()``: our server over streamable HTTP on 127.0.0.1, with Host and Origin checks.

Stateful sessions (``Mcp-Session-Id``), not stateless: 2025-era clients get resource-updated
notifications only on a session's standalone stream. Responses stream as SSE (not plain JSON), so
progress notifications reach the caller. The checks refuse DNS rebinding: a request whose Host is
not this loopback address and port gets 421, one from a non-loopback browser Origin gets 403.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from plugin.errors import ConfigError
from plugin.log_setup import configure_logging
from plugin.mcp.server import build_server, freeze_startup_heap

HOST = "127.0.0.1"
PATH = "/mcp"
DEFAULT_PORT = 8765


def transport_security(port: int) -> TransportSecuritySettings:
    """Only this server's own loopback Host; Origins of loopback pages (e.g. the MCP Inspector) on any port."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def bind(port: int) -> socket.socket:
    """Listen on 127.0.0.1:port (0 picks a free port) before serving, so the URL works once announced."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"Cannot listen on {HOST}:{port} ({e.strerror}); pick another --port, or 0 for any.") from e
    sock.listen(128)
    return sock


def http_app(server: MCPServer, port: int) -> Starlette:
    """The ASGI app serving ``server`` at ``/mcp``; its lifespan runs the session manager (and ours)."""
    return server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=False,
        json_response=False,
        transport_security=transport_security(port),
        host=HOST,
    )


async def serve_app(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on an already listening socket until cancelled or interrupted."""
    import uvicorn

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    config = uvicorn.Config(app, log_level=level if level in uvicorn.config.LOG_LEVELS else "warning")
    await uvicorn.Server(config).serve([sock])


def serve_http(home: Path | None = None, *, port: int = DEFAULT_PORT, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted; ``on_ready(url)`` is called once the socket listens.

    Raises:
        ConfigError: the port cannot be bound.
    """
    configure_logging()
    sock = bind(port)
    actual = sock.getsockname()[1]
    app = http_app(build_server(home), actual)
    freeze_startup_heap()
    on_ready(url_of(sock))
    try:
        anyio.run(serve_app, app, sock)
    finally:
        sock.close()


def url_of(sock: socket.socket) -> str:
    return f"http://{HOST}:{sock.getsockname()[1]}{PATH}"
