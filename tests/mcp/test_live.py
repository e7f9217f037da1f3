"""The MCP surface with real workers: notifications of a worker's appends in both eras, the blocking
status with progress, cancel, and the audit trail with its chain check."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from plugin.mcp.server import build_server
from tests.conftest import sf_env
from tests.jobs.support import HOLD_CONTACT, SMALL, fake_org, held, wait_until
from tests.mcp.test_subscriptions import Inbox, subscribe

pytestmark = pytest.mark.e2e
JOBS = "backup://jobs"


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch) -> Any:
    with fake_org() as fake:
        for key, value in {**sf_env(fake), "SFBACKUP_CLEANUP_DELAY": "0.1"}.items():
            monkeypatch.setenv(key, value)
        yield fake


async def start(client: Client, **args: Any) -> str:
    result = await client.call_tool("salesforce_backup", {"backup_type": "full", **SMALL, **args})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return str(result.structured_content["job_id"])


def test_subscribers_of_both_eras_hear_of_the_workers_appends(home: Path, org: Any) -> None:
    inbox = Inbox()

    async def go() -> tuple[str, list[str]]:
        server = build_server(home)
        async with (
            Client(server, mode="legacy", message_handler=inbox) as legacy,
            Client(server) as modern,
        ):
            job = await start(modern)
            uri = f"backup://jobs/{job}"
            await subscribe(legacy, uri)
            seen: list[str] = []
            async with modern.listen(resource_subscriptions=[uri]) as sub:
                with anyio.fail_after(60):
                    async for event in sub:  # re-read the job at each cue, as a client does
                        seen.append(str(event.uri))  # type: ignore[attr-defined]
                        state = json.loads((await modern.read_resource(uri)).contents[0].text)
                        if state["status"] == "completed":
                            break
            with anyio.fail_after(60):
                while inbox.uris.count(uri) < 2:
                    await inbox.wait_for(uri)
                    await anyio.sleep(0.05)
            return job, seen

    job, seen = anyio.run(go)
    uri = f"backup://jobs/{job}"
    # This process recorded one event of the job (job.requested); every other cue came from the worker.
    assert set(seen) == {uri} and len(seen) >= 2
    assert inbox.uris.count(uri) >= 2


def test_status_can_wait_with_progress_and_answers_with_the_jobs_state(home: Path, org: Any) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def go() -> Any:
        async with Client(build_server(home)) as client:
            job = await start(client)
            return await client.call_tool(
                "salesforce_backup_status", {"job_id": job, "wait_seconds": 50}, progress_callback=on_progress
            )

    result = anyio.run(go)
    assert not result.is_error, result.content
    job = result.structured_content["job"]
    assert job["status"] == "completed" and job["records"] == 1800
    values = [v for v, _, _ in progress]
    assert values == sorted(set(values)) and values[-1] == 100.0 and len(values) >= 2
    assert all(total == 100 for _, total, _ in progress)
    assert progress[-1][2] is not None and progress[-1][2].startswith(f"Job {job['job_id']}: completed")


def test_wait_seconds_needs_a_job_and_is_capped_below_host_timeouts(home: Path) -> None:
    async def go() -> tuple[Any, Any]:
        async with Client(build_server(home)) as client:
            return (
                await client.call_tool("salesforce_backup_status", {"wait_seconds": 5}),
                await client.call_tool("salesforce_backup_status", {"job_id": "x", "wait_seconds": 51}),
            )

    no_job, too_long = anyio.run(go)
    assert no_job.is_error and "wait_seconds needs a job_id" in no_job.content[0].text
    assert too_long.is_error and "less than or equal to 50" in too_long.content[0].text


def test_cancel_tool_stops_a_busy_backup(home: Path, org: Any) -> None:
    hold = org.add_fault(HOLD_CONTACT)

    async def go() -> Any:
        async with Client(build_server(home), mode="legacy") as client:
            job = await start(client)
            await anyio.to_thread.run_sync(lambda: wait_until(lambda: held(org, hold), what="the worker to be busy"))
            return await client.call_tool("salesforce_backup_cancel", {"job_id": job, "reason": "test"})

    result = anyio.run(go)
    assert not result.is_error, result.content
    content = result.structured_content
    assert content["job"]["status"] == "cancelled" and content["job"]["cancel_requested"] is True
    assert content["message"] == f"Job {content['job']['job_id']} is cancelled."


def test_events_tool_pages_the_trail_and_checks_the_chain(home: Path, org: Any) -> None:
    async def go() -> tuple[list[Any], Any]:
        async with Client(build_server(home)) as client:
            job = await start(client)
            waited = await client.call_tool("salesforce_backup_status", {"job_id": job, "wait_seconds": 50})
            assert waited.structured_content["job"]["status"] == "completed"
            pages = []
            after = 0
            while True:
                page = await client.call_tool("salesforce_backup_events", {"job_id": job, "after": after, "limit": 3})
                pages.append(page)
                after = page.structured_content["next_after"]
                if after is None:
                    break
            unknown = await client.call_tool("salesforce_backup_events", {"job_id": "nope"})
            return pages, unknown

    pages, unknown = anyio.run(go)
    events = [e for p in pages for e in p.structured_content["events"]]
    types = [e["type"] for e in events]
    assert types[0] == "job.requested" and "job.completed" in types
    assert all(len(p.structured_content["events"]) <= 3 for p in pages) and len(pages) >= 3
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))
    chains = [p.structured_content["chain"] for p in pages]
    assert all(c["ok"] for c in chains)
    assert chains[0]["checked"] == chains[0]["verified_through"]  # the first call checks the whole log
    assert chains[-1]["verified_through"] >= positions[-1]
    assert pages[0].content[0].text.startswith("Hash chain intact through position")
    assert unknown.is_error and "No job with id 'nope'" in unknown.content[0].text


def test_events_tool_reports_a_rewritten_event(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!x")
    runtime = JobRuntime(home)
    for _ in range(3):
        runtime.start_backup(validate_request(home=home, backup_type="incremental"), spawn=False)
    runtime.close()

    async def call(client: Client) -> Any:
        return await client.call_tool("salesforce_backup_events", {})

    async def go() -> tuple[Any, Any]:
        async with Client(build_server(home)) as client:
            before = await call(client)
            tamper(home / "events.db", position=2)
            return before, await call(client)

    before, after = anyio.run(go)
    assert before.structured_content["chain"] == {
        "ok": True,
        "verified_through": 3,
        "checked": 3,
        "first_bad_position": None,
        "problem": None,
    }
    chain = after.structured_content["chain"]
    assert chain["ok"] is False and chain["first_bad_position"] == 2
    assert after.content[0].text.startswith("HASH CHAIN BROKEN at position 2")


def tamper(path: Path, *, position: int) -> None:
    """Rewrite one stored event the way an attacker with file access would: around the guard trigger."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_no_update'").fetchone()
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET data = json_set(data, '$.org_id', 'evil') WHERE id = ?", (position,))
        conn.execute(ddl)
    finally:
        conn.close()
