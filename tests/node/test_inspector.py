"""The MCP Inspector CLI (npm @modelcontextprotocol/inspector 2.12.0, a TypeScript client) calls every
tool and reads the resources, over stdio and over HTTP."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sf_env
from tests.support.contract import TOOL_NAMES
from tests.support.node_tools import needs_node, run_tool
from tests.support.processes import http_server

pytestmark = [*needs_node, pytest.mark.e2e]


def inspect(target: list[str], *args: str, exit_code: int = 0) -> dict[str, Any]:
    """One Inspector CLI call; it exits 5 when a tool answers isError."""
    result = run_tool("mcp-inspector", "--cli", *target, *args)
    assert result.returncode == exit_code, result.stdout + result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def stdio_target(home: Path, fake: Any) -> list[str]:
    env = {"SFBACKUP_HOME": str(home), **sf_env(fake)}
    flags = [part for key, value in env.items() for part in ("-e", f"{key}={value}")]
    return [*flags, sys.executable, "-m", "plugin.cli", "serve"]


def test_inspector_sees_the_legacy_handshake_with_subscribe(home: Path, fake_org: Any) -> None:
    info = inspect(stdio_target(home, fake_org), "--method", "initialize")
    assert info["protocolVersion"] == "2025-11-25"
    assert info["capabilities"]["resources"]["subscribe"] is True


def test_inspector_lists_tools_with_schemas_and_annotations(home: Path, fake_org: Any) -> None:
    tools = {t["name"]: t for t in inspect(stdio_target(home, fake_org), "--method", "tools/list")["tools"]}
    assert set(tools) == TOOL_NAMES
    for tool in tools.values():
        assert tool["outputSchema"]["type"] == "object"
        assert set(tool["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


def test_inspector_calls_every_tool_and_reads_the_job(tmp_path: Path, fake_org: Any) -> None:
    """Over HTTP, so each Inspector call is one Node start, not also one Python server start."""
    call = ["--method", "tools/call", "--tool-name"]
    with http_server(tmp_path / "home", env=sf_env(fake_org)) as url:
        target = [url, "--transport", "http"]
        started = inspect(
            target, *call, "salesforce_backup", "--tool-arg", "backup_type=full", 'objects_filter=["Custom__c"]'
        )
        assert started["isError"] is False, started
        job_id = started["structuredContent"]["job_id"]
        one = inspect(target, *call, "salesforce_backup_status", "--tool-arg", f"job_id={job_id}")
        every = inspect(target, *call, "salesforce_backup_status", "--tool-arg", "limit=5")
        listed = inspect(target, *call, "salesforce_backup_list")
        refused = inspect(
            target, *call, "salesforce_backup", "--tool-arg", 'objects_filter=["Account WHERE 1=1"]', exit_code=5
        )
        resource = inspect(target, "--method", "resources/read", "--uri", f"backup://jobs/{job_id}")
        templates = inspect(target, "--method", "resources/templates/list")
        waited = inspect(target, *call, "salesforce_backup_status", "--tool-arg", f"job_id={job_id}", "wait_seconds=50")
        trail = inspect(target, *call, "salesforce_backup_events", "--tool-arg", f"job_id={job_id}", "limit=2")
        late_cancel = inspect(target, *call, "salesforce_backup_cancel", "--tool-arg", f"job_id={job_id}", exit_code=5)
        no_resume = inspect(target, *call, "salesforce_backup_resume", "--tool-arg", f"job_id={job_id}", exit_code=5)
    assert one["structuredContent"]["job"]["job_id"] == job_id
    assert [j["job_id"] for j in every["structuredContent"]["jobs"]] == [job_id]
    assert listed["isError"] is False and "backups" in listed["structuredContent"]
    assert refused["isError"] is True and "not sObject API names" in refused["content"][0]["text"]
    assert json.loads(resource["contents"][0]["text"])["job_id"] == job_id
    assert [t["uriTemplate"] for t in templates["resourceTemplates"]] == ["backup://jobs/{job_id}"]
    assert waited["structuredContent"]["job"]["status"] == "completed"
    assert [e["type"] for e in trail["structuredContent"]["events"]] == ["job.requested", "job.started"]
    assert trail["structuredContent"]["chain"]["ok"] is True and trail["structuredContent"]["next_after"] == 2
    assert "there is nothing to cancel" in late_cancel["content"][0]["text"]
    assert (
        "only an interrupted job, or one that failed with a retryable error, can be resumed"
        in no_resume["content"][0]["text"]
    )
