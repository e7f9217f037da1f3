"""MCP round trips over stdio, in both protocol eras, against the SDK's floor (run by hand).

    .venv/bin/python bench/mcp_latency.py [--samples 400] [--backup-samples 60] [--history-jobs 10000]
                                          [--events-per-job 100] [--cache DIR]
                                          [--phases idle,load,history] [--no-in-process]

The floor is a bare ``MCPServer`` with one trivial tool, started the same way (a stdio subprocess of
this Python) and called by the same client: nothing written in Python over this SDK can be faster.
Calls to the floor and to sfbackup alternate one by one, so machine noise hits both alike. Phases:

  idle     sfbackup's log holds one finished backup; salesforce_backup calls are paced (each job
           ends before the next call), so nothing else runs.
  load     4 backups of the whole demo fake org (files included) run at all times, topped up as they end.
           They (and the timed small ones) are incremental since 2000-01-01, every row like a full
           one, because only one full backup per org runs at a time; SFBACKUP_MAX_WORKERS is raised
           so the cap queues nothing.
  history  the log holds --history-jobs finished (and cleaned) jobs of --events-per-job events each
           (1M events by default; built once and kept in --cache), projections caught up as a
           long-lived server's are.

Targets: p50 <= 1.3x and p99 <= 2x the floor (idle, load); status with the large history <= 1.5x.
For a page of jobs (status without job_id) the floor server also sends that very answer (its
``page`` tool, same output schema): the SDK's and the client's cost for the answer's size (the
client checks every field of every job against the output schema), so the ratio to it is what
sfbackup adds, and the history's page is held to 1.5x of it; its ratio to ``ping`` is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from events import EventLog  # noqa: E402
from events.codec import encode  # noqa: E402
from events.ids import job_stream, new_job_id  # noqa: E402
from events.vocabulary import (  # noqa: E402
    JobCleaned,
    JobCompleted,
    JobProgress,
    JobRequested,
    JobStarted,
    ObjectFinished,
)
from plugin.jobs.options import validate_request  # noqa: E402
from plugin.jobs.runtime import JobRuntime  # noqa: E402
from projections import ProjectionStore  # noqa: E402

FLOOR_SERVER = """
import json, sys
from typing import Annotated
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
sys.path.insert(0, {repo!r})
from plugin.mcp.results import StatusResult
server = MCPServer(name="floor")
@server.tool()
def ping() -> str:
    return "pong"
PAGES = {{}}
@server.tool()
def page(path: str) -> Annotated[CallToolResult, StatusResult]:
    # The SDK's floor for one exact answer: sfbackup's page of jobs, read once, sent as it is.
    if path not in PAGES:
        with open(path, encoding="utf-8") as fh:
            PAGES[path] = json.load(fh)
    answer = PAGES[path]
    return CallToolResult(
        content=[TextContent(type="text", text=t) for t in answer["texts"]], structured_content=answer["data"]
    )
server.run("stdio")
"""
TERMINAL = {"completed", "failed", "cancelled", "interrupted"}
# Incremental since 2000 = every row, as a full backup, but not single-flight: each call records a
# job and starts a worker, as every call did before one full backup per org was the rule.
EVERY_ROW = {"backup_type": "incremental", "since_date": "2000-01-01"}
SMALL_BACKUP = {**EVERY_ROW, "objects_filter": ["Custom__c"], "include_files": False}
LOAD_JOBS = 4
LOAD_BACKUP = EVERY_ROW


@dataclass
class Series:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds * 1000)


def p50_p99(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


# -- processes -----------------------------------------------------------------------------------


def start_fake_org() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The demo org in its own process (``sfbackup fake-org serve``), so its threads never share this
    process's GIL with the client whose round trips are measured."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "fake-org", "serve", "--org", str(REPO / "fixtures/orgs/demo")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    info: dict[str, str] = json.loads(proc.stdout.readline())
    return proc, info


def sf_env(info: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env.update(
        SFBACKUP_HOME=str(home),
        SF_INSTANCE_URL=info["instance_url"],
        SF_ACCESS_TOKEN=info["access_token"],
        SFBACKUP_CA_BUNDLE=info["ca_bundle"],
        SFBACKUP_MAX_WORKERS="16",  # 4 load backups and the timed small ones never wait for a slot
    )
    return env


@asynccontextmanager
async def connect(args: list[str], env: dict[str, str], mode: str, errlog: Any) -> AsyncIterator[Any]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(REPO))
    async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
        yield client


async def timed(client: Any, tool: str, args: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await client.call_tool(tool, args)
    elapsed = time.perf_counter() - start
    if result.is_error:
        raise SystemExit(f"{tool} failed: {result.content[0].text}")
    return elapsed, result.structured_content


# -- the history log -------------------------------------------------------------------------------


def build_history(home: Path, jobs: int, per_job: int) -> None:
    """``jobs`` finished jobs of ``per_job`` events each, appended 100 jobs per transaction."""
    home.mkdir(parents=True, exist_ok=True)
    org, url = "00D000000000042EAA", "https://example.my.salesforce.com"
    started = time.perf_counter()
    with EventLog.open(home / "events.db") as log:
        for first in range(0, jobs, 100):
            with log.write_transaction() as tx:
                for _ in range(first, min(first + 100, jobs)):
                    job_id = new_job_id()
                    folder = str(home / "backups" / org / job_id)
                    batch = [
                        encode(JobRequested(job_id=job_id, backup_directory=folder, org_id=org, instance_url=url)),
                        encode(JobStarted(org_id=org, instance_url=url, objects_total=10, objects=("Account",) * 10)),
                    ]
                    for i in range(per_job - 4):
                        done = ObjectFinished(object="Account", records=100) if i % 10 == 9 else None
                        batch.append(
                            encode(
                                JobProgress(
                                    objects_done=i // 10,
                                    objects_total=10,
                                    records=i * 10,
                                    percent=i,
                                    object_finished=done,
                                )
                            )
                        )
                    batch.append(encode(JobCompleted(backup_directory=folder, objects=10, records=1000)))
                    batch.append(encode(JobCleaned(reason="job completed; cleanup 5 s after it ended")))
                    tx.append(job_stream(job_id), batch, expected_version=0)
            if first % 1000 == 0:
                print(f"  history: {first + 100}/{jobs} jobs, {time.perf_counter() - started:.0f} s", flush=True)
        print("  history: catching up the projections ...", flush=True)
        caught = time.perf_counter()
        ProjectionStore(log).catch_up()
        print(f"  history: {jobs * per_job} events; catch-up {time.perf_counter() - caught:.0f} s", flush=True)
    (home / "ready").write_text(f"{jobs} {per_job}\n", encoding="utf-8")


def history_home(cache: Path, jobs: int, per_job: int) -> tuple[Path, str]:
    home = cache / f"history-v2-{jobs}x{per_job}"  # v2: every job ends with job.cleaned, as a server's do
    if not (home / "ready").is_file():
        print(f"building a log of {jobs} jobs x {per_job} events in {home} (once; kept for later runs)")
        build_history(home, jobs, per_job)
    with EventLog.open(home / "events.db") as log:
        store = ProjectionStore(log)
        store.catch_up()
        middle = store.jobs(limit=1, offset=jobs // 2)[0].job_id
    return home, middle


# -- phases ----------------------------------------------------------------------------------------


async def wait_for(runtime: JobRuntime, job_id: str, timeout: float = 300) -> str:
    with anyio.fail_after(timeout):
        while (status := runtime.job(job_id).status) not in TERMINAL:
            await anyio.sleep(0.05)
    return status


async def phase(
    name: str,
    floor: Any,
    ours: Any,
    status_args: dict[str, Any],
    samples: int,
    backup_samples: int,
    series: Series,
    *,
    between: Callable[[], Any] | None = None,
    pace: JobRuntime | None = None,
    page_file: Path | None = None,
) -> None:
    """Alternate floor and status calls; every few rounds one salesforce_backup call. A page of jobs
    (no job_id) is also timed against the floor's ``page`` tool sending that same answer."""
    page: dict[str, Any] | None = None
    if page_file is not None:
        answer = await ours.call_tool("salesforce_backup_status", status_args)
        texts = [part.text for part in answer.content]
        page_file.write_text(json.dumps({"texts": texts, "data": answer.structured_content}), encoding="utf-8")
        page = {"path": str(page_file)}
    for _ in range(20):  # warm both servers and the client
        await timed(floor, "ping", {})
        await timed(ours, "salesforce_backup_status", status_args)
        if page is not None:
            await timed(floor, "page", page)
    every = max(1, samples // backup_samples) if backup_samples else 0
    for i in range(samples):
        series.add(f"{name} floor", (await timed(floor, "ping", {}))[0])
        series.add(f"{name} status", (await timed(ours, "salesforce_backup_status", status_args))[0])
        if page is not None:
            series.add(f"{name} floor-page", (await timed(floor, "page", page))[0])
        if every and i % every == 0 and len(series.samples.get(f"{name} backup", [])) < backup_samples:
            elapsed, start = await timed(ours, "salesforce_backup", SMALL_BACKUP)
            series.add(f"{name} backup", elapsed)
            series.add(f"{name} floor@backup", (await timed(floor, "ping", {}))[0])
            if pace is not None:
                await wait_for(pace, start["job_id"])
        if between is not None:
            between()


class Load:
    """Keeps LOAD_JOBS full backups (with file bodies) running, started through the job runtime."""

    def __init__(self, runtime: JobRuntime) -> None:
        self.runtime = runtime
        self.running: list[str] = []
        self.started = 0

    def top_up(self) -> None:
        self.running = [j for j in self.running if self.runtime.job(j).status not in TERMINAL]
        while len(self.running) < LOAD_JOBS:
            job = self.runtime.start_backup(validate_request(home=self.runtime.home, **LOAD_BACKUP), actor="bench")
            self.running.append(job.job_id)
            self.started += 1


async def run_era(mode: str, args: argparse.Namespace, info: dict[str, str], work: Path, series: Series) -> None:
    small = work / f"home-{mode}"
    phases = args.phases
    if "history" in phases:
        history, history_job = history_home(args.cache, args.history_jobs, args.events_per_job)
    floor_script = work / "floor_server.py"
    floor_script.write_text(FLOOR_SERVER.format(repo=str(REPO)), encoding="utf-8")
    serve = ["-m", "plugin.cli", "serve"]
    with open(work / f"stderr-{mode}.log", "w", encoding="utf-8") as errlog:
        async with AsyncExitStack() as stack:
            floor = await stack.enter_async_context(connect([str(floor_script)], sf_env(info, small), mode, errlog))
            ours = await stack.enter_async_context(connect(serve, sf_env(info, small), mode, errlog))
            os.environ.update(sf_env(info, small))  # the bench's own runtime starts load jobs with these
            runtime = JobRuntime(small)
            _, first = await timed(ours, "salesforce_backup", SMALL_BACKUP)
            assert await wait_for(runtime, first["job_id"]) == "completed"
            one = {"job_id": first["job_id"]}

            if "idle" in phases:
                await phase("idle", floor, ours, one, args.samples, args.backup_samples, series, pace=runtime)
                page = work / "page-idle.json"
                await phase("idle-list", floor, ours, {}, args.samples // 2, 0, series, page_file=page)

            if "load" in phases:
                load = Load(runtime)
                load.top_up()
                await phase("load", floor, ours, one, args.samples, args.backup_samples, series, between=load.top_up)
                print(f"  [{mode}] load phase started {load.started} full backups", flush=True)
                for job_id in load.running:
                    await wait_for(runtime, job_id)
            runtime.close()
            if "history" not in phases:
                return

            old = await stack.enter_async_context(connect(serve, sf_env(info, history), mode, errlog))
            await phase("history", floor, old, {"job_id": history_job}, args.samples, 0, series)
            pages = work / "page-history.json"
            await phase("history-list", floor, old, {}, args.samples // 2, 0, series, page_file=pages)


PHASES = ("idle", "load", "history")
TARGETS = {"idle": (1.3, 2.0), "load": (1.3, 2.0), "history": (1.5, None)}
# A page of jobs is held to its own floor: a bare server sending that very page. Against ``ping`` it
# also carries the client's schema check of every field on the page, which the bare server pays alike.
PAGE_TARGETS = {"history-list": 1.5}


def report(mode: str, series: Series) -> list[str]:
    rows = []
    for name in ("idle", "idle-list", "load", "history", "history-list"):
        if f"{name} floor" not in series.samples:  # a phase left out (--phases)
            continue
        floor = series.samples[f"{name} floor"]
        f50, f99 = p50_p99(floor)
        rows.append(f"{mode:<7} {name:<13} floor   n={len(floor):<4} p50 {f50:7.2f} ms            p99 {f99:7.2f} ms")
        for what in ("status", "backup"):
            key = f"{name} {what}"
            if key not in series.samples:
                continue
            # salesforce_backup is compared with the floor calls made right after it (same moment).
            b50, b99 = p50_p99(series.samples[f"{name} floor@backup"] if what == "backup" else floor)
            v50, v99 = p50_p99(series.samples[key])
            verdict = ""
            if name in TARGETS:
                want50, want99 = TARGETS[name]
                ok = v50 / b50 <= want50 and (want99 is None or v99 / b99 <= want99)
                verdict = "ok" if ok else f"MISS (p50 <= {want50}x" + (f", p99 <= {want99}x)" if want99 else ")")
            rows.append(
                f"{mode:<7} {name:<13} {what:<7} n={len(series.samples[key]):<4} "
                f"p50 {v50:7.2f} ms ({v50 / b50:4.2f}x)   p99 {v99:7.2f} ms ({v99 / b99:4.2f}x)  {verdict}"
            )
        if f"{name} floor-page" in series.samples:
            # The same page sent by a bare server: what the SDK and the client's schema check cost for
            # this answer; the status row's ratio to it is what sfbackup adds.
            page = series.samples[f"{name} floor-page"]
            p50, p99 = p50_p99(page)
            v50, v99 = p50_p99(series.samples[f"{name} status"])
            verdict = ""
            if name in PAGE_TARGETS:
                want = PAGE_TARGETS[name]
                verdict = "  ok" if v50 / p50 <= want else f"  MISS (status/page p50 <= {want}x)"
            rows.append(
                f"{mode:<7} {name:<13} page    n={len(page):<4} p50 {p50:7.2f} ms ({p50 / f50:4.2f}x)   "
                f"p99 {p99:7.2f} ms ({p99 / f99:4.2f}x)  the same answer from a bare server; "
                f"status/page p50 {v50 / p50:4.2f}x, p99 {v99 / p99:4.2f}x{verdict}"
            )
    return rows


def in_process(info: dict[str, str], work: Path, rounds: int) -> list[str]:
    """What one request costs inside the server, back to back (hot caches) and after 10 ms idle (as
    between a host's calls), beside a bare SQLite insert transaction measured the same way: the
    round trips' gap to the floor is mostly this work run with cold caches."""
    import sqlite3

    home = work / "home-in-process"
    os.environ.update(sf_env(info, home))
    runtime = JobRuntime(home)
    bare = sqlite3.connect(work / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode = WAL")
    bare.execute("PRAGMA synchronous = NORMAL")  # as the request's commit
    bare.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")

    def request() -> None:
        runtime.request_backup(validate_request(home=runtime.home, **SMALL_BACKUP), actor="bench")

    def insert() -> None:
        bare.execute("BEGIN IMMEDIATE")
        bare.execute("INSERT INTO t (body) VALUES (?)", ("x" * 600,))
        bare.execute("COMMIT")

    rows = []
    try:
        for name, call in (("request_backup", request), ("bare insert", insert)):
            figures = []
            for idle in (0.0, 0.01):
                times = []
                for _ in range(rounds):
                    if idle:
                        time.sleep(idle)
                    start = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - start) * 1000)
                when = "after 10 ms idle" if idle else "back to back"
                figures.append(f"{when} p50 {statistics.median(times):.3f} ms")
            rows.append(f"in-process {name:<15} " + ", ".join(figures))
    finally:
        bare.close()
        runtime.close()  # the requests start no worker: their jobs stay requested in this throw-away home
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--backup-samples", type=int, default=60)
    parser.add_argument("--history-jobs", type=int, default=10_000)
    parser.add_argument("--events-per-job", type=int, default=100)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sfbackup-bench")
    parser.add_argument(
        "--phases", type=_phases, default=PHASES, help=f"comma-separated, of {','.join(PHASES)} (default: all)"
    )
    parser.add_argument("--no-in-process", action="store_true", help="leave out the in-process request figures")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    proc, info = start_fake_org()
    rows: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sfbackup-bench-") as tmp:
            for mode in ("legacy", "auto"):
                series = Series()
                print(f"era {mode} ...", flush=True)
                before = os.getloadavg()[0]
                anyio.run(run_era, mode, args, info, Path(tmp), series)
                rows.extend(report(mode, series))
                # The machine may be shared: the load says how much the figures are to be trusted.
                rows.append(
                    f"{mode:<7} load average (1 min) {before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
                )
            if not args.no_in_process:
                rows.extend(in_process(info, Path(tmp), max(20, args.samples // 2)))
    finally:
        proc.terminate()
        proc.wait()
    print(f"\nround trips over stdio (mcp {_mcp_version()}, Python {sys.version.split()[0]}); x = ratio to the floor")
    print("\n".join(rows))


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(set(chosen) - set(PHASES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return chosen


def _mcp_version() -> str:
    from importlib.metadata import version

    return version("mcp")


if __name__ == "__main__":
    main()
