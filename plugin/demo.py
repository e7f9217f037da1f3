"""``sfbackup demo``: the main job end to end, as a host would run it.

Starts the bundled fake org, starts ``sfbackup serve`` as a stdio subprocess, connects with the
official MCP client, calls ``salesforce_backup``, polls ``salesforce_backup_status`` until the job
ends, and prints a summary. Exit status 0 only for a completed backup.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_ORG = REPO_ROOT / "fixtures" / "orgs" / "demo"
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


def bundled_demo_org() -> Path:
    if not (DEMO_ORG / "describe").is_dir():
        raise SystemExit(
            f"The bundled demo org is not at {DEMO_ORG} (sfbackup demo runs from a clone of the repository); "
            "pass --org DIR to use another fake-org folder."
        )
    return DEMO_ORG


def _say(text: str, *, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


async def _drive(info: dict[str, Any], home: Path, quiet: bool) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {
        "SFBACKUP_HOME": str(home),
        "SF_INSTANCE_URL": info["instance_url"],
        "SF_ACCESS_TOKEN": info["access_token"],
        "SFBACKUP_CA_BUNDLE": info["ca_bundle"],
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=env)
    errlog_path = home / "serve.stderr.log"
    with open(errlog_path, "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=60) as client:
            _say(f"connected to sfbackup serve over stdio (MCP {client.protocol_version})", quiet=quiet)
            t0 = time.perf_counter()
            started = await client.call_tool("salesforce_backup", {"backup_type": "full"})
            start_ms = (time.perf_counter() - t0) * 1000
            if started.is_error:
                text = " ".join(getattr(b, "text", "") for b in started.content)
                raise RuntimeError(f"salesforce_backup failed: {text}")
            start = started.structured_content or {}
            job_id = start["job_id"]
            _say(f"salesforce_backup answered in {start_ms:.0f} ms: job {job_id}", quiet=quiet)
            _say(f"  folder {start['backup_directory']}", quiet=quiet)
            last = None
            while True:
                reply = await client.call_tool("salesforce_backup_status", {"job_id": job_id})
                if reply.is_error:
                    text = " ".join(getattr(b, "text", "") for b in reply.content)
                    raise RuntimeError(f"salesforce_backup_status failed: {text}")
                job: dict[str, Any] = (reply.structured_content or {})["job"]
                line = (
                    f"  {job['status']:<9} {job['percent']:>3}%  {job.get('phase') or '':<17} "
                    f"{job['objects_done']}/{job['objects_total']} objects  {job['records']} records  "
                    f"{job['files']} files  {job.get('current_object') or ''}"
                )
                if line != last:
                    _say(line, quiet=quiet)
                    last = line
                if job["status"] in TERMINAL:
                    break
                await anyio.sleep(0.25)
            listed = await client.call_tool("salesforce_backup_list", {})
            job["listed"] = any(b["job_id"] == job_id for b in (listed.structured_content or {}).get("backups", []))
            job["start_ms"] = round(start_ms, 1)
            job["backup_seconds"] = round(time.perf_counter() - t0, 2)
            return job


def run_demo(*, org_dir: Path | None, home: Path | None, page_size: int | None, as_json: bool) -> int:
    from plugin.fakeorg import start_fake_org

    org = org_dir or bundled_demo_org()
    temp_home = home is None
    home = home or Path(tempfile.mkdtemp(prefix="sfbackup-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _say(
        f"sfbackup demo: fake org {org}\nSFBACKUP_HOME {home}" + (" (temporary)" if temp_home else ""),
        quiet=as_json,
    )
    with start_fake_org(org, page_size=page_size) as fake:
        info = fake.info()
        _say(f"fake Salesforce at {info['instance_url']} (org {info.get('org_id')})", quiet=as_json)
        try:
            job = anyio.run(_drive, info, home, as_json)
        except Exception as e:
            log = home / "serve.stderr.log"
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
            print(f"demo FAILED: {e}\n{tail}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - t0
    summary = {
        "status": job["status"],
        "job_id": job["job_id"],
        "objects": job["objects_total"],
        "records": job["records"],
        "files": job["files"],
        "bytes": job["bytes"],
        "backup_seconds": job["backup_seconds"],
        "seconds": round(seconds, 2),
        "backup_directory": job.get("backup_directory"),
        "error": job.get("error"),
        "home": str(home),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    elif job["status"] == "completed":
        print(
            f"\nbackup completed: {summary['objects']} objects, {summary['records']} records, "
            f"{summary['files']} files, {summary['bytes']} bytes in {summary['backup_seconds']} s "
            f"(request to completion; {summary['seconds']} s with fake org and server start-up)\n"
            f"folder: {summary['backup_directory']}"
        )
    else:
        error = job.get("error") or {}
        print(f"\nbackup {job['status']}: {error.get('code')}: {error.get('message')}", file=sys.stderr)
    if temp_home and job["status"] == "completed" and not as_json:
        print(f"(the temporary SFBACKUP_HOME stays for you to look at; remove it with: rm -r {home})")
    return 0 if job["status"] == "completed" else 1
