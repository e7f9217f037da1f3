"""Status read time with a small and a large log: the store's ``job()`` and the MCP status tool.

Both logs hold jobs of 100 events; reads pick jobs at random (fixed seed) after one catch-up, so
every timed read is what a caller sees when nothing new was appended: the "anything new?" check
plus one indexed lookup. The store remembers reads until anyone commits, so ``job()`` is timed
twice: a lookup (remembered reads dropped before each timed read, so both logs do the indexed
lookup; the target) and a poll (reads remembered, as a client polling its jobs sees them). Every
figure picks among the same number of distinct jobs in both logs (the small log's count), so
remembered reads and answers favour neither. The tool is called through ``MCPServer.call_tool``
(argument validation, the tool body, result conversion; no transport).
"""

from __future__ import annotations

import random
import statistics
import time
from contextlib import ExitStack
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


def _picks(ids: list[str], distinct: int, reads: int, seed: int) -> list[str]:
    """``reads`` random picks among ``distinct`` of ``ids`` (fixed seed)."""
    rng = random.Random(seed)
    pool = rng.sample(ids, min(distinct, len(ids)))
    return [rng.choice(pool) for _ in range(reads)]


def measure_store(paths: dict[int, Path], reads: int) -> dict[int, dict[str, float]]:
    """Median seconds of ``ProjectionStore.job(id)`` (lookup and poll) and of the job listing per log.

    Reads alternate between the logs, so load from elsewhere on the machine hits both alike.
    """
    with ExitStack() as stack:
        stores: dict[int, ProjectionStore] = {}
        picks: dict[int, list[str]] = {}
        out: dict[int, dict[str, float]] = {}
        all_ids: dict[int, list[str]] = {}
        for size, path in paths.items():
            log = stack.enter_context(EventLog.open(path))
            stores[size] = ProjectionStore(log)
            start = time.perf_counter()
            stores[size].catch_up()
            out[size] = {"catch_up": time.perf_counter() - start}
            all_ids[size] = _job_ids(log)
            out[size]["jobs"] = float(len(all_ids[size]))
        distinct = min(len(ids) for ids in all_ids.values())
        for size, store in stores.items():
            picks[size] = _picks(all_ids[size], distinct, reads, seed=7)
            for job_id in picks[size][:50]:  # warm the page cache and the statement cache
                store.job(job_id)
        one: dict[int, list[float]] = {size: [] for size in paths}
        poll: dict[int, list[float]] = {size: [] for size in paths}
        listing: dict[int, list[float]] = {size: [] for size in paths}
        for i in range(reads):
            for size, store in stores.items():
                store.forget_reads()
                t = time.perf_counter()
                status = store.job(picks[size][i])
                one[size].append(time.perf_counter() - t)
                assert status is not None
                t = time.perf_counter()
                store.job(picks[size][i])  # the same job again: as a client polling it
                poll[size].append(time.perf_counter() - t)
                if i % 10 == 0:
                    t = time.perf_counter()
                    store.jobs(limit=20)
                    store.count_jobs()
                    listing[size].append(time.perf_counter() - t)
        for size in paths:
            out[size]["job"] = statistics.median(one[size])
            out[size]["poll"] = statistics.median(poll[size])
            out[size]["distinct"] = float(distinct)
            out[size]["list"] = statistics.median(listing[size])
        return out


def measure_tool(homes: dict[int, Path], reads: int) -> dict[int, float]:
    """Median seconds of ``salesforce_backup_status(job_id=...)`` per home, calls alternating."""
    from mcp.server.mcpserver import MCPServer

    from plugin.mcp.mount import register

    all_ids: dict[int, list[str]] = {}
    for size, home in homes.items():
        with EventLog.open(home / "events.db") as log:
            ProjectionStore(log).catch_up()
            all_ids[size] = _job_ids(log)
    distinct = min(len(ids) for ids in all_ids.values())
    picks = {size: _picks(ids, distinct, reads + 20, seed=11) for size, ids in all_ids.items()}
    servers = {size: MCPServer(name=f"bench-{size}") for size in homes}
    holders = [register(servers[size], home=home) for size, home in homes.items()]

    async def run() -> dict[int, list[float]]:
        times: dict[int, list[float]] = {size: [] for size in homes}
        for i in range(reads + 20):
            for size, server in servers.items():
                t = time.perf_counter()
                result: Any = await server.call_tool("salesforce_backup_status", {"job_id": picks[size][i]})
                elapsed = time.perf_counter() - t
                assert not result.is_error, result
                if i >= 20:  # the first calls open the runtime and warm caches
                    times[size].append(elapsed)
        return times

    try:
        times = anyio.run(run)
    finally:
        for holder in holders:
            holder.runtime.close()
    return {size: statistics.median(values) for size, values in times.items()}
