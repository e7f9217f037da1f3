"""Status read time with a small and a large log: the store's ``job()`` and the MCP status tool.

Both logs hold jobs of 100 events; reads pick jobs at random (fixed seed) after one catch-up, so
every timed read is what a caller sees when nothing new was appended: the "anything new?" check
plus one indexed lookup. The tool is called through ``MCPServer.call_tool`` (argument validation,
the tool body, result conversion; no transport).
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

import anyio

from bench.workload import build_job_log
from events import EventLog
from projections import ProjectionStore

JOB_SIZE = 100


def ensure_log(path: Path, total: int) -> tuple[int, float]:
    """Build the log unless ``path`` already holds exactly ``total`` events; return (count, build seconds)."""
    if path.exists():
        with EventLog.open(path) as log:
            if log.head()[0] == total:
                return total, 0.0
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    count = build_job_log(path, total, JOB_SIZE)
    return count, time.perf_counter() - start


def _job_ids(log: EventLog) -> list[str]:
    return [row["job_id"] for row in log.query("SELECT job_id FROM job_status ORDER BY job_id")]


def measure_store(path: Path, reads: int) -> dict[str, float]:
    """Median seconds of ``ProjectionStore.job(id)`` and of the job listing, after a catch-up."""
    with EventLog.open(path) as log:
        store = ProjectionStore(log)
        start = time.perf_counter()
        store.catch_up()
        catch_up = time.perf_counter() - start
        ids = _job_ids(log)
        rng = random.Random(7)
        picks = [rng.choice(ids) for _ in range(reads)]
        for job_id in picks[:50]:  # warm the page cache and the statement cache
            store.job(job_id)
        one: list[float] = []
        for job_id in picks:
            t = time.perf_counter()
            status = store.job(job_id)
            one.append(time.perf_counter() - t)
            assert status is not None
        listing: list[float] = []
        for _ in range(max(50, reads // 10)):
            t = time.perf_counter()
            store.jobs(limit=20)
            store.count_jobs()
            listing.append(time.perf_counter() - t)
    return {
        "job": statistics.median(one),
        "list": statistics.median(listing),
        "catch_up": catch_up,
        "jobs": float(len(ids)),
    }


def measure_tool(home: Path, reads: int) -> float:
    """Median seconds of ``salesforce_backup_status(job_id=...)`` on the server's runtime."""
    from mcp.server.mcpserver import MCPServer

    from plugin.mcp.tools import register

    with EventLog.open(home / "events.db") as log:
        ProjectionStore(log).catch_up()
        ids = _job_ids(log)
    rng = random.Random(11)
    picks = [rng.choice(ids) for _ in range(reads)]
    server = MCPServer(name="bench")
    holder = register(server, home=home)

    async def run() -> list[float]:
        times: list[float] = []
        for i, job_id in enumerate([*picks[:20], *picks]):
            t = time.perf_counter()
            result: Any = await server.call_tool("salesforce_backup_status", {"job_id": job_id})
            elapsed = time.perf_counter() - t
            assert not result.is_error, result
            if i >= 20:
                times.append(elapsed)
        return times

    try:
        times = anyio.run(run)
    finally:
        holder.close()
    return statistics.median(times)
