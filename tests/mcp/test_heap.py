"""``sfbackup serve`` leaves its startup heap out of later garbage collections (a full collection
of it was a 60 ms pause inside some tool call), having freed startup's garbage first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

import plugin.mcp.server as server_module

REPO = Path(__file__).resolve().parents[2]


def test_the_startup_heap_is_frozen_after_its_garbage_is_freed() -> None:
    script = """
import gc, weakref
from plugin.mcp.server import freeze_startup_heap
class Node:
    pass
kept, lost = Node(), Node()
lost.me = lost  # a cycle nobody refers to: garbage only a collection frees
gone = weakref.ref(lost)
del lost
before = gc.get_freeze_count()
freeze_startup_heap()
print(before, gc.get_freeze_count(), gone() is None, gc.collect(2))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    before, frozen, freed, found = out.stdout.split()
    assert int(before) == 0
    assert int(frozen) > 20_000  # the imported modules' objects, now outside every collection
    assert freed == "True"  # startup's garbage was collected, not frozen for good
    assert int(found) == 0


def test_serve_stdio_freezes_the_heap_once_the_server_is_built(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    calls: list[str] = []
    monkeypatch.setattr(server_module, "configure_logging", lambda: calls.append("logging"))
    monkeypatch.setattr(server_module, "freeze_startup_heap", lambda: calls.append("freeze"))
    monkeypatch.setattr(MCPServer, "run", lambda self, transport: calls.append(f"run {transport}"))
    real_build = server_module.build_server

    def build(home: Path | None = None) -> Any:
        calls.append("build")
        return real_build(home)

    monkeypatch.setattr(server_module, "build_server", build)
    server_module.serve_stdio(home)
    assert calls == ["logging", "build", "freeze", "run stdio"]
