"""Tool behaviour through the in-process MCP client, in both protocol eras."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from plugin.mcp.results import BackupListResult, CancelResult, EventsResult, StartResult, StatusResult
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


TOOLS = {
    # name: (outputSchema model, readOnly, destructive, idempotent, openWorld)
    "salesforce_backup": (StartResult, False, False, False, True),
    "salesforce_backup_status": (StatusResult, True, False, True, False),
    "salesforce_backup_list": (BackupListResult, True, False, True, False),
    "salesforce_backup_cancel": (CancelResult, False, True, True, False),
    "salesforce_backup_resume": (StartResult, False, False, False, True),
    "salesforce_backup_events": (EventsResult, True, False, True, False),
}


def list_tools(home: Path, mode: str) -> dict[str, Any]:
    from mcp import Client

    async def go() -> Any:
        async with Client(build_server(home), mode=mode) as client:  # type: ignore[arg-type]
            return await client.list_tools()

    return {t.name: t for t in anyio.run(go).tools}


@pytest.mark.parametrize("mode", MODES)
def test_exactly_the_contract_tools_are_listed(home: Path, mode: str) -> None:
    assert set(list_tools(home, mode)) == set(TOOLS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(TOOLS))
def test_each_tool_has_its_annotations_output_schema_title_and_description(home: Path, mode: str, name: str) -> None:
    model, read_only, destructive, idempotent, open_world = TOOLS[name]
    tool = list_tools(home, mode)[name]
    assert tool.output_schema == model.model_json_schema()
    assert tool.annotations.read_only_hint is read_only
    assert tool.annotations.destructive_hint is destructive
    assert tool.annotations.idempotent_hint is idempotent
    assert tool.annotations.open_world_hint is open_world
    assert tool.title and tool.description and len(tool.description) > 40


@pytest.mark.parametrize("mode", MODES)
def test_backup_tool_takes_the_seed_parameters_with_their_limits(home: Path, mode: str) -> None:
    props = list_tools(home, mode)["salesforce_backup"].input_schema["properties"]
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
    assert props["backup_type"]["enum"] == ["full", "incremental", "files_only"]
    assert (props["parallel_downloads"]["minimum"], props["parallel_downloads"]["maximum"]) == (1, 10)
    assert props["objects_filter"]["anyOf"][0]["maxItems"] == 2000


@pytest.mark.parametrize("mode", MODES)
def test_every_answer_has_readable_text_then_the_same_data_as_json(home: Path, mode: str) -> None:
    status, listing = run(home, mode, [("salesforce_backup_status", {}), ("salesforce_backup_list", {})])
    for result in (status, listing):
        assert not result.is_error
        readable, data = result.content
        assert json.loads(data.text) == result.structured_content
        assert readable.text.startswith("No ")


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


JOB_VIEW = {"job_id": "j", "status": "requested", "resource_uri": "backup://jobs/j", "phase": None}
BACKUP_VIEW = {"job_id": "j", "resource_uri": "backup://jobs/j", "org_id": None}


@pytest.mark.parametrize(
    ("model", "good", "bad"),
    [
        (StatusResult, {"job": JOB_VIEW, "jobs": [JOB_VIEW]}, {"jobs": [JOB_VIEW | {"phase": 3}]}),
        (BackupListResult, {"backups": [BACKUP_VIEW], "next_offset": None}, {"backups": [BACKUP_VIEW | {"org_id": 3}]}),
    ],
)
def test_optional_fields_are_published_as_type_arrays_and_still_accept_null(
    model: Any, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    import jsonschema

    schema = model.model_json_schema()
    scalar_or_null = [b for b in _any_ofs(schema) if {"type": "null"} in b and all(set(x) == {"type"} for x in b)]
    assert scalar_or_null == []
    assert '["string", "null"]' in json.dumps(schema)
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def _any_ofs(node: Any) -> list[list[Any]]:
    if isinstance(node, dict):
        return ([node["anyOf"]] if "anyOf" in node else []) + [b for v in node.values() for b in _any_ofs(v)]
    if isinstance(node, list):
        return [b for v in node for b in _any_ofs(v)]
    return []


def test_the_package_exports_are_pinned() -> None:
    import plugin.mcp

    assert plugin.mcp.__all__ == ["BackupPlugin", "Subscriptions", "build", "build_server", "register", "serve_stdio"]


@pytest.mark.parametrize("mode", MODES)
def test_a_bug_is_an_error_that_names_no_internals(
    home: Path, mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from plugin.jobs.runtime import JobRuntime

    def broken(self: JobRuntime, **kwargs: Any) -> Any:
        raise RuntimeError("token=00Dsecret in a message that must stay on the server")

    monkeypatch.setattr(JobRuntime, "jobs", broken)
    (result,) = run(home, mode, [("salesforce_backup_status", {})])
    assert result.is_error
    assert "Internal error (RuntimeError) in salesforce_backup_status" in text(result)
    assert "00Dsecret" not in text(result)
    assert "00Dsecret" in caplog.text  # the traceback is logged on the server side


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize("model", [StatusResult, CancelResult, EventsResult, BackupListResult, StartResult])
def test_published_schemas_inline_their_models_and_have_no_branches(model: Any) -> None:
    schema = model.model_json_schema()
    assert (_refs(schema), _any_ofs(schema), "$defs" in schema) == ([], [], False)


def test_the_inlined_status_schema_still_checks_every_field_of_a_job() -> None:
    """Inlining must not loosen the schema: every field keeps its type, in ``job`` and in ``jobs`` alike."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(StatusResult.model_json_schema())
    published = StatusResult.model_json_schema()["properties"]
    fields = {"job": published["job"]["properties"], "jobs": published["jobs"]["items"]["properties"]}
    assert set(fields["jobs"]) < set(fields["job"])  # a page holds summaries; the full view is one job's
    view = {"job_id": "j", "status": "failed", "resource_uri": "backup://jobs/j"}
    error = {"code": "E", "message": "m", "retryable": True}
    for good in (
        {"job": view},
        {"job": None},
        {"jobs": [view, view | {"error": error}]},
        {"job": view | {"error": None}},
    ):
        assert list(validator.iter_errors(good)) == []
    for where, names in fields.items():
        for field in names:
            wrong = view | {field: [1]}
            doc = {"job": wrong} if where == "job" else {"jobs": [view, wrong]}
            assert list(validator.iter_errors(doc)), (field, where)
    for bad in (
        {"job": {"status": "failed", "resource_uri": "u"}},  # job_id is required
        {"job": view | {"error": {"retryable": "yes"}}},
        {"job": view | {"error": "E"}},
        {"job": "j"},
        {"jobs": [None]},
    ):
        assert list(validator.iter_errors(bad)), bad


def test_a_status_answer_is_made_once_per_state_of_the_job() -> None:
    import dataclasses

    from plugin.mcp.status_answers import job_answer, page_answer
    from projections import JobStatus

    running = JobStatus(job_id="j", status="running", phase="exporting", percent=10)
    first = job_answer(running)
    assert job_answer(JobStatus(job_id="j", status="running", phase="exporting", percent=10)) is first
    later = job_answer(dataclasses.replace(running, percent=60))
    assert (first[0]["job"]["percent"], later[0]["job"]["percent"]) == (10, 60)
    assert "60%" in later[1] and json.loads(later[2]) == later[0]
    page = page_answer((running,), 3, 0, 1)
    assert (page[0]["jobs"][0]["percent"], page[0]["next_offset"], page[0]["total"]) == (10, 1, 3)
    assert (
        page_answer((dataclasses.replace(running, status="completed"),), 3, 0, 1)[0]["jobs"][0]["status"] == "completed"
    )


def test_a_backup_request_is_answered_on_the_event_loop_unless_it_would_wait(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request runs on the loop (no thread hand-over) when nothing waits; else on a thread."""
    import threading

    from mcp import Client

    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    monkeypatch.setattr(JobRuntime, "spawn_worker", lambda self, job_id, attempt=1: None)
    calls: list[tuple[str, bool, bool]] = []  # (which, answered, on the loop's thread)
    quick, slow = JobRuntime.request_backup_now, JobRuntime.request_backup
    refuse = {"now": False}

    def now(self: JobRuntime, *args: Any, **kwargs: Any) -> Any:
        start = None if refuse["now"] else quick(self, *args, **kwargs)
        calls.append(("now", start is not None, threading.current_thread() is threading.main_thread()))
        return start

    def thread(self: JobRuntime, *args: Any, **kwargs: Any) -> Any:
        calls.append(("thread", True, threading.current_thread() is threading.main_thread()))
        return slow(self, *args, **kwargs)

    monkeypatch.setattr(JobRuntime, "request_backup_now", now)
    monkeypatch.setattr(JobRuntime, "request_backup", thread)
    small = {"backup_type": "incremental", "objects_filter": ["Account"]}

    async def go() -> list[Any]:
        async with Client(build_server(home), mode="legacy") as client:
            await client.call_tool("salesforce_backup_status", {})  # the runtime is open from here on
            answers = [await client.call_tool("salesforce_backup", small) for _ in range(3)]
            refuse["now"] = True  # as when a worker holds the log's write lock
            answers.append(await client.call_tool("salesforce_backup", small))
            return answers

    answers = anyio.run(go)
    assert not any(a.is_error for a in answers)
    assert len({a.structured_content["job_id"] for a in answers}) == 4
    assert ("now", True, True) in calls[:-2]  # answered on the loop's own thread
    assert all(not on_loop for which, _, on_loop in calls if which == "thread")
    assert calls[-2:] == [("now", False, True), ("thread", True, False)]  # handed over, answered all the same


def test_a_row_the_watch_cannot_read_ends_the_watch_not_the_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program appended a row whose data is not JSON (the database no longer refuses that,
    `sfbackup verify` names it): the log's follower fails on it. The server answers on, without job
    notifications, instead of ending with the follower (its whole task group did)."""
    import sqlite3

    from mcp import Client

    from plugin.jobs.runtime import JobRuntime
    from plugin.mcp.server import build
    from tests.jobs.support import wait_until

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    monkeypatch.setattr(JobRuntime, "spawn_worker", lambda self, job_id, attempt=1: None)
    small = {"backup_type": "incremental", "objects_filter": ["Account"]}
    server, plugin = build(home)

    def append_unreadable() -> None:
        conn = sqlite3.connect(home / "events.db", isolation_level=None)
        try:
            conn.execute(
                "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, metadata, "
                "occurred_at, recorded_at, prev_hash, hash) SELECT '0190f0c0-0000-7000-8000-000000000001', "
                "'job-x', 1, type, schema_version, 'not json', metadata, occurred_at, recorded_at, hash, hash "
                "FROM events ORDER BY id DESC LIMIT 1"
            )
        finally:
            conn.close()

    async def go() -> list[Any]:
        async with Client(server, mode="legacy") as client:
            answers = [await client.call_tool("salesforce_backup", small)]
            await anyio.to_thread.run_sync(lambda: wait_until(lambda: plugin.watch.running, what="the watch"))
            append_unreadable()
            await anyio.to_thread.run_sync(lambda: wait_until(lambda: not plugin.watch.running, what="the watch ends"))
            answers.append(await client.call_tool("salesforce_backup", small))
            answers.append(await client.call_tool("salesforce_backup_status", {"job_id": "x"}))
            return answers

    first, after, status = anyio.run(go)
    assert not first.is_error and not after.is_error
    # The projections cannot fold that row either: an answer that says so and what to run, not a bug's.
    assert status.is_error
    assert text(status).endswith(
        "The job status cannot be brought up to date: the event at position 2 of the event log cannot be applied "
        "(job.requested data is not JSON: Expecting value: line 1 column 1 (char 0)). Run `sfbackup verify` on the "
        "server's machine: it checks the log and names every damaged event."
    )
    assert "Internal error" not in text(status)


def test_a_rewritten_log_is_an_answer_that_says_what_to_run() -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from plugin.mcp.tools import tool_errors
    from projections import RewrittenLogError

    with pytest.raises(ToolError) as refused, tool_errors("salesforce_backup_status"):
        raise RewrittenLogError("job_status", 5)
    assert str(refused.value) == (
        "The job status cannot be brought up to date: the event at position 5, where projection 'job_status' "
        "stopped, has changed: the log was rewritten. Run `sfbackup verify`, then `sfbackup rebuild`."
    )
