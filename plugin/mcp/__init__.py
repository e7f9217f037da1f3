"""The MCP surface: our server, ``register`` for a host's server, HTTP serving, subscriptions."""

from plugin.mcp.mount import BackupPlugin, register
from plugin.mcp.notify import Subscriptions
from plugin.mcp.server import build, build_server, serve_stdio

__all__ = ["BackupPlugin", "Subscriptions", "build", "build_server", "register", "serve_stdio"]
