"""The MCP Bundle: `mcpb validate` (npm @anthropic-ai/mcpb 2.1.2) accepts manifest.json, and the bundle
`mcpb pack` builds, once unpacked as a host would, starts the server and runs a backup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hosts.conftest import load
from tests.hosts.test_host_configs import completed, start_bundle
from tests.support.node_tools import needs_node, run_tool

pytestmark = [*needs_node, pytest.mark.e2e]


def test_mcpb_validate_accepts_the_manifest() -> None:
    result = run_tool("mcpb", "validate", "manifest.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Manifest schema validation passes!" in result.stdout


def test_the_packed_bundle_holds_only_the_sources_and_starts_the_server(fake_org: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "sfbackup.mcpb"
    packed = run_tool("mcpb", "pack", ".", str(bundle))
    assert packed.returncode == 0, packed.stdout + packed.stderr
    unpacked = tmp_path / "unpacked"
    result = run_tool("mcpb", "unpack", str(bundle), str(unpacked))
    assert result.returncode == 0, result.stdout + result.stderr
    top = {p.name for p in unpacked.iterdir()}
    assert {"manifest.json", "pyproject.toml", "README.md", "plugin", "events", "projections"} <= top
    assert not top & {"tests", "fixtures", ".venv", ".tools", ".git", "bench"}
    completed(start_bundle(load("manifest.json"), unpacked, fake_org, tmp_path))
