"""The main job end to end: a real MCP client over stdio, `sfbackup serve`, a worker process, the
fake org on loopback, and a backup compared value by value with the org's fixture files."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from events import EventLog
from events.ids import job_stream
from events.vocabulary import JobProgress
from tests.conftest import sf_env
from tests.orgdata import blobs, expected_cell, load_objects

pytestmark = pytest.mark.e2e
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


def server_params(home: Path, fake: Any) -> Any:
    from mcp import StdioServerParameters

    env = {"SFBACKUP_HOME": str(home), **sf_env(fake), "TZ": "Asia/Tokyo"}
    return StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=env)


async def call(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    text = " ".join(getattr(b, "text", "") for b in result.content)
    assert not result.is_error, text
    assert result.structured_content is not None
    return dict(result.structured_content)


async def run_backup(home: Path, fake: Any) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.stdio import stdio_client

    out: dict[str, Any] = {}
    with open(home / "serve.stderr.log", "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(server_params(home, fake), errlog=errlog), mode="legacy") as client:
            t0 = time.perf_counter()
            start = await call(client, "salesforce_backup", {"backup_type": "full"})
            out["start_seconds"] = time.perf_counter() - t0
            with EventLog.open(home / "events.db") as log:
                out["types_at_answer"] = [e.type for e in log.read_stream(job_stream(start["job_id"]))]
            out["start"] = start
            deadline = time.monotonic() + 240
            while True:
                status = await call(client, "salesforce_backup_status", {"job_id": start["job_id"]})
                if status["job"]["status"] in TERMINAL:
                    break
                assert time.monotonic() < deadline, status
                await anyio.sleep(0.2)
            out["final"] = status["job"]
            out["list"] = await call(client, "salesforce_backup_list", {})
    return out


@pytest.fixture(scope="module")
def backup_run(fake_org: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("e2e-home")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    try:
        result = anyio.run(run_backup, home, fake_org)
    finally:
        os.environ.update(saved)
    result["home"] = home
    yield result


def test_backup_over_stdio_completes(backup_run: dict[str, Any]) -> None:
    final = backup_run["final"]
    log = (backup_run["home"] / "serve.stderr.log").read_text(encoding="utf-8")
    assert final["status"] == "completed", (final, log)
    assert final["percent"] == 100
    assert Path(final["backup_directory"]).is_dir()
    assert not Path(final["backup_directory"] + ".partial").exists()
    assert final["backup_directory"] == backup_run["start"]["backup_directory"]
    assert any(b["job_id"] == final["job_id"] for b in backup_run["list"]["backups"])


def test_salesforce_backup_answers_before_the_worker_has_done_anything(
    backup_run: dict[str, Any], demo_org: Path
) -> None:
    assert backup_run["start"]["status"] == "requested"
    assert backup_run["types_at_answer"] == ["job.requested"]
    with EventLog.open(backup_run["home"] / "events.db") as log:
        events = log.read_stream(job_stream(backup_run["start"]["job_id"]))
    started = next(e for e in events if e.type == "job.started")
    requested = events[0]
    assert started.metadata["pid"] != requested.metadata["pid"]  # exported in another process
    # The worker's last event; job.cleaned follows SFBACKUP_CLEANUP_DELAY (5 s) later.
    assert [e.type for e in events if e.type != "job.cleaned"][-1] == "job.completed"
    progress = [e for e in events if e.type == "job.progress"]
    finished = [e.data["object_finished"]["object"] for e in progress if e.data.get("object_finished")]
    assert finished == started.data["objects"]
    assert {e.schema_version for e in progress} == {JobProgress.SCHEMA_VERSION}  # producers write the current one
    totals = {e.data["files_total"] for e in progress if e.data["phase"] == "downloading_files"}
    # Every record of a file object is a body to fetch; the URL Document turns out to have none.
    assert totals == {len(blobs(demo_org)) + 1} and backup_run["final"]["files_total"] == len(blobs(demo_org)) + 1
    assert backup_run["final"]["files"] == len(blobs(demo_org))


def test_every_csv_has_every_record_and_field_with_exact_values(backup_run: dict[str, Any], demo_org: Path) -> None:
    bdir = Path(backup_run["final"]["backup_directory"])
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    objects = load_objects(demo_org)
    assert objects, "the demo org has objects"
    for name, obj in objects.items():
        path = bdir / "data" / f"{name}.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, strict=True))
        header, body = rows[0], rows[1:]
        compounds = {f["name"] for f in obj.fields if f["type"] in ("address", "location")}
        wanted = [f["name"] for f in obj.fields if f["type"] != "base64" and f["name"] not in compounds]
        assert [h for h in header if h not in compounds] == wanted, name
        assert len(body) == len(obj.records), name
        assert manifest["objects"][name]["records"] == len(obj.records)
        assert manifest["objects"][name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        by_id = {r[header.index("Id")]: dict(zip(header, r, strict=True)) for r in body}
        for record in obj.records:
            row = by_id[record["Id"]]
            for field in wanted:
                assert row[field] == expected_cell(record.get(field)), (name, record["Id"], field)


def test_every_file_body_matches_the_org_bytes(backup_run: dict[str, Any], demo_org: Path) -> None:
    bdir = Path(backup_run["final"]["backup_directory"])
    expected = blobs(demo_org)
    assert expected, "the demo org has file bodies"
    with open(bdir / "files" / "index.csv", encoding="utf-8", newline="") as fh:
        index = {(r["object"], r["record_id"], r["field"]): r for r in csv.DictReader(fh)}
    assert set(index) == set(expected)
    for key, sha in expected.items():
        row = index[key]
        assert row["sha256"] == sha
        assert hashlib.sha256((bdir / row["path"]).read_bytes()).hexdigest() == sha
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]["count"] == len(expected)
    total = sum(p.stat().st_size for p in (demo_org / "blobs").glob("*/*/*"))
    assert manifest["files"]["bytes"] == total == backup_run["final"]["bytes"]


def test_status_survives_a_server_restart(backup_run: dict[str, Any], fake_org: Any) -> None:
    from mcp import Client
    from mcp.client.stdio import stdio_client

    home: Path = backup_run["home"]

    async def again() -> dict[str, Any]:
        with open(home / "serve2.stderr.log", "w", encoding="utf-8") as errlog:
            async with Client(stdio_client(server_params(home, fake_org), errlog=errlog), mode="legacy") as client:
                return await call(client, "salesforce_backup_status", {})

    listing = anyio.run(again)
    job = next(j for j in listing["jobs"] if j["job_id"] == backup_run["final"]["job_id"])
    assert job["status"] == "completed"
    assert job["records"] == backup_run["final"]["records"]
