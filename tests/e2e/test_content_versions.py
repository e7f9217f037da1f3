"""content_versions through the MCP tool and the CLI: a real worker process backs up the demo org's
current file versions only, and the request records the option."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from events import EventLog
from events.ids import job_stream
from plugin.cli import cli
from plugin.mcp.server import build_server
from tests.conftest import sf_env
from tests.orgdata import load_objects

pytestmark = pytest.mark.e2e
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


def latest_versions(demo_org: Path) -> set[str]:
    return {v["Id"] for v in load_objects(demo_org)["ContentVersion"].records if v["IsLatest"]}


def requested(home: Path, job_id: str) -> Any:
    with EventLog.open(home / "events.db") as log:
        return log.read_stream(job_stream(job_id))[0]


def manifest_of(folder: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(folder, "manifest.json").read_text(encoding="utf-8"))
    return data


def test_the_mcp_tool_backs_up_only_the_latest_versions_when_asked(
    home: Path, fake_org: Any, demo_org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp import Client

    for key, value in sf_env(fake_org).items():
        monkeypatch.setenv(key, value)
    args = {"backup_type": "files_only", "objects_filter": ["ContentVersion"], "content_versions": "latest"}

    async def go() -> tuple[Any, Any, dict[str, Any]]:
        async with Client(build_server(home), mode="legacy") as client:
            bad = await client.call_tool("salesforce_backup", {**args, "content_versions": "newest"})
            start = await client.call_tool("salesforce_backup", args)
            job_id = start.structured_content["job_id"]
            deadline = time.monotonic() + 120
            while True:
                status = await client.call_tool("salesforce_backup_status", {"job_id": job_id})
                if status.structured_content["job"]["status"] in TERMINAL or time.monotonic() > deadline:
                    return bad, start, status.structured_content["job"]
                await anyio.sleep(0.1)

    bad, start, job = anyio.run(go)
    assert bad.is_error and "latest" in " ".join(getattr(b, "text", "") for b in bad.content)
    assert job["status"] == "completed", job
    event = requested(home, start.structured_content["job_id"])
    assert (event.schema_version, event.data["content_versions"]) == (2, "latest")
    manifest = manifest_of(job["backup_directory"])
    assert manifest["options"]["content_versions"] == "latest"
    assert manifest["files"]["by_object"]["ContentVersion"]["count"] == len(latest_versions(demo_org)) == job["files"]


def test_the_cli_option_backs_up_only_the_latest_versions(
    fake_org: Any, demo_org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sf_env(fake_org).items():
        monkeypatch.setenv(key, value)
    args = ["backup", "--type", "files_only", "--object", "ContentVersion", "--content-versions", "latest", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    job = json.loads(result.output)
    assert job["status"] == "completed" and job["files"] == len(latest_versions(demo_org))
    assert manifest_of(job["backup_directory"])["objects"]["ContentVersion"]["records"] == len(
        latest_versions(demo_org)
    )
    refused = CliRunner().invoke(cli, [*args[:-2], "newest"], catch_exceptions=False)
    assert refused.exit_code == 2 and "'newest' is not one of 'all', 'latest'" in refused.output
