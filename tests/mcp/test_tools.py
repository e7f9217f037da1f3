"""Tool behaviour through the in-process MCP client, in both protocol eras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from plugin.mcp.server import build_server

MODES = ["legacy", "auto"]


def run(home: Path, mode: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    from mcp import Client

    async def go() -> list[Any]:
        out = []
        async with Client(build_server(home), mode=mode) as client:  # type: ignore[arg-type]
            for name, args in calls:
                out.append(await client.call_tool(name, args))
        return out

    return anyio.run(go)


def text(result: Any) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


@pytest.mark.parametrize("mode", MODES)
def test_tools_are_listed_with_output_schemas_and_annotations(home: Path, mode: str) -> None:
    from mcp import Client

    async def go() -> Any:
        async with Client(build_server(home), mode=mode) as client:  # type: ignore[arg-type]
            return await client.list_tools()

    tools = {t.name: t for t in anyio.run(go).tools}
    assert set(tools) == {"salesforce_backup", "salesforce_backup_status", "salesforce_backup_list"}
    for t in tools.values():
        assert t.output_schema is not None and t.description
    assert tools["salesforce_backup"].annotations.read_only_hint is False
    assert tools["salesforce_backup_status"].annotations.read_only_hint is True
    props = tools["salesforce_backup"].input_schema["properties"]
    assert set(props) == {
        "backup_type",
        "since_date",
        "objects_filter",
        "include_files",
        "include_attachments",
        "include_documents",
        "compression",
        "parallel_downloads",
        "output_directory",
        "content_versions",
    }


@pytest.mark.parametrize("mode", MODES)
def test_backup_without_credentials_is_an_error_saying_what_to_set(home: Path, mode: str) -> None:
    (result,) = run(home, mode, [("salesforce_backup", {"backup_type": "full"})])
    assert result.is_error
    assert "SF_INSTANCE_URL + SF_ACCESS_TOKEN" in text(result)


@pytest.mark.parametrize("mode", MODES)
def test_bad_arguments_are_errors_and_record_nothing(home: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    results = run(
        home,
        mode,
        [
            ("salesforce_backup", {"objects_filter": ["Account WHERE Name != null"]}),
            ("salesforce_backup", {"since_date": "last tuesday"}),
            ("salesforce_backup", {"output_directory": "/etc"}),
            ("salesforce_backup_status", {}),
        ],
    )
    assert all(r.is_error for r in results[:3])
    assert "not sObject API names" in text(results[0])
    assert "not an ISO date" in text(results[1])
    assert "outside the allowed folders" in text(results[2])
    assert results[3].structured_content["jobs"] == []
    assert "No backup jobs yet" in text(results[3])


@pytest.mark.parametrize("mode", MODES)
def test_status_of_an_unknown_job_is_an_error_naming_it(home: Path, mode: str) -> None:
    (result,) = run(home, mode, [("salesforce_backup_status", {"job_id": "nope"})])
    assert result.is_error
    assert "No job with id 'nope'" in text(result)


def test_a_requested_job_shows_in_status_list_and_resource(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp import Client

    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    runtime = JobRuntime(home)
    job = runtime.start_backup(validate_request(home=home, backup_type="full"), spawn=False)
    runtime.close()
    assert job.org_id == "00D000000000042EAA"
    assert job.backup_directory is not None
    assert Path(job.backup_directory).parent == home / "backups" / "00D000000000042EAA"

    async def go() -> tuple[Any, Any, Any]:
        async with Client(build_server(home), mode="legacy") as client:
            status = await client.call_tool("salesforce_backup_status", {"job_id": job.job_id})
            listing = await client.call_tool("salesforce_backup_status", {"limit": 1})
            resource = await client.read_resource(f"backup://jobs/{job.job_id}")
            return status, listing, resource

    status, listing, resource = anyio.run(go)
    assert status.structured_content["job"]["status"] == "requested"
    assert status.structured_content["job"]["resource_uri"] == f"backup://jobs/{job.job_id}"
    assert listing.structured_content["total"] == 1
    assert job.job_id in resource.contents[0].text
    assert "secret" not in text(status) + text(listing) + resource.contents[0].text
