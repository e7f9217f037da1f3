"""Event log benchmark: ours vs raw sqlite3 vs the eventsourcing library, rebuild speed, status reads.

Run by hand from the repository root (``pip install -e '.[bench]'`` first):

    .venv/bin/python bench/events.py            # everything, a few minutes
    .venv/bin/python bench/events.py --help     # sizes, runs, --cache DIR, --only PART

Absolute figures depend on the disk's fsync cost and on what else the machine runs; the targets are
ratios measured in the same run (and one absolute rebuild rate). Exit status 0 when every target
passes, 1 when one fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and this very file would shadow the
# ``events`` package; the repository root takes its place.
REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

from bench import status_read  # noqa: E402
from bench.stores import OURS, RAW, SYNCHRONOUS, Store, eventsourcing_stores, ours_prebuilt, schema_floor  # noqa: E402
from bench.workload import build_job_log, progress_payload  # noqa: E402
from events import EventLog  # noqa: E402
from events.chain import canonical_json  # noqa: E402
from projections import ProjectionStore  # noqa: E402

TARGET_VS_ES = 2.0
TARGET_VS_RAW = 0.5
TARGET_REBUILD = 200_000
TARGET_STATUS = 1.3


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/events.py", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="events for batched append and read all (default 20000)")
    p.add_argument("--single-n", type=int, default=2_000, help="events appended one per transaction (default 2000)")
    p.add_argument("--batch", type=int, default=100, help="events per transaction when batching (default 100)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the median is shown (default 3)")
    p.add_argument("--rebuild-n", type=int, default=200_000, help="events in the rebuild log (default 200000)")
    p.add_argument("--status-small", type=int, default=1_000, help="events in the small status log (default 1000)")
    p.add_argument("--status-big", type=int, default=1_000_000, help="events in the big status log (default 1000000)")
    p.add_argument("--reads", type=int, default=2_000, help="timed status reads per log (default 2000)")
    p.add_argument("--cache", type=Path, help="keep the rebuild and status logs in DIR and reuse them next time")
    p.add_argument("--tmp", type=Path, help="folder for the temporary databases (default: the system temp folder)")
    p.add_argument("--only", choices=["append", "rebuild", "status"], action="append", help="run only these parts")
    return p.parse_args(argv)


def _fsync_ms(folder: Path) -> float:
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(50):
            os.write(fd, b"x" * 4096)
            start = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1000


def _filesystem(folder: Path) -> str:
    best = ("?", "")
    for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines() if Path("/proc/mounts").exists() else []:
        _, mount, kind, *_ = line.split()
        if str(folder.resolve()).startswith(mount) and len(mount) >= len(best[1]):
            best = (kind, mount)
    return best[0]


class Verdicts:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False

    def check(self, label: str, value: float, target: str, ok: bool, unit: str = "x") -> None:
        self.failed |= not ok
        shown = f"{value:,.0f}" if unit == "/s" else f"{value:.2f}{unit}"
        self.lines.append(f"  {'PASS' if ok else 'FAIL'}  {label:<52} {shown:>12}   target {target}")


def run_append(args: argparse.Namespace, tmp: Path, verdicts: Verdicts) -> None:
    stores: list[Store] = [OURS, RAW]
    try:
        stores += eventsourcing_stores()
    except ImportError:
        print("  eventsourcing is not installed: pip install -e '.[bench]' (its rows and target are skipped)")
    payload_bytes = len(canonical_json(progress_payload(1234)))
    print(
        f"\nAppend and read: events/s, median of {args.runs} runs (runs interleaved across stores, a fresh "
        f"file each); payload {payload_bytes} B JSON (job.progress), streams of 100 events; 1/txn over "
        f"{args.single_n:,} events, {args.batch}/txn and read all over {args.n:,}"
    )
    times: dict[str, dict[str, list[float]]] = {s.name: {"single": [], "batched": [], "read": []} for s in stores}
    extra: dict[str, list[float]] = {"prebuilt": [], "floor": []}
    last_file: dict[str, Path] = {}
    for run in range(args.runs):
        # Interleaved, so a burst of load from elsewhere on the machine hits every store alike.
        for store in stores:
            folder = tmp / f"{store.name.replace(' ', '_')}-{run}"
            folder.mkdir()
            times[store.name]["single"].append(store.single(folder / "single.db", args.single_n))
            last_file[store.name] = folder / "batched.db"
            times[store.name]["batched"].append(store.batched(last_file[store.name], args.n, args.batch))
            seconds, count = store.read_all(last_file[store.name])
            assert count == args.n, (store.name, count)
            times[store.name]["read"].append(seconds)
            if store is OURS:
                extra["prebuilt"].append(ours_prebuilt(folder / "prebuilt.db", args.n, args.batch))
                extra["floor"].append(schema_floor(folder / "floor.db", args.n, args.batch))
    print(f"  {'store':<28} {'sync':<6} {'1 / txn':>10} {f'{args.batch} / txn':>10} {'read all':>10}")
    rates: dict[str, tuple[float, float, float]] = {}
    for store in stores:
        t = times[store.name]
        rates[store.name] = (
            args.single_n / statistics.median(t["single"]),
            args.n / statistics.median(t["batched"]),
            args.n / statistics.median(t["read"]),
        )
        single, batched, read = rates[store.name]
        sync = store.synchronous(last_file[store.name])
        print(f"  {store.name:<28} {sync:<6} {single:>10,.0f} {batched:>10,.0f} {read:>10,.0f}")
    print("  what each row does:")
    for store in stores:
        print(f"    {store.name}: {store.description}")
    ours = rates[OURS.name]
    for other in (RAW.name, "eventsourcing Application", "eventsourcing recorder"):
        if other in rates:
            ratio = [o / t for o, t in zip(ours, rates[other], strict=True)]
            print(
                f"  ours / {other:<26} 1/txn {ratio[0]:.2f}x   {args.batch}/txn {ratio[1]:.2f}x   "
                f"read all {ratio[2]:.2f}x"
            )
    prebuilt = args.n / statistics.median(extra["prebuilt"])
    floor = args.n / statistics.median(extra["floor"])
    against = [(RAW.name, rates[RAW.name][1])]
    if "eventsourcing Application" in rates:
        against.append(("eventsourcing Application", rates["eventsourcing Application"][1]))
    shares = ", ".join(f"{floor / other:.2f}x {name}" for name, other in against)
    print(
        f"  where ours' {args.batch}/txn time goes: with its NewEvents made before the clock starts "
        f"{prebuilt:,.0f}/s; our schema's SQLite work alone (the same rows copied by INSERT ... SELECT, "
        f"every trigger, CHECK and index in place, FULL, no Python per row) {floor:,.0f}/s = {shares}"
    )
    if "eventsourcing Application" in rates:
        ratio = ours[1] / rates["eventsourcing Application"][1]
        verdicts.check(
            "batched append, ours / eventsourcing Application", ratio, f">= {TARGET_VS_ES}x", ratio >= TARGET_VS_ES
        )
    ratio = ours[1] / rates[RAW.name][1]
    verdicts.check("batched append, ours / raw sqlite3", ratio, f">= {TARGET_VS_RAW}x", ratio >= TARGET_VS_RAW)


def _cached(args: argparse.Namespace, tmp: Path, name: str) -> Path:
    folder = args.cache or tmp
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def run_rebuild(args: argparse.Namespace, tmp: Path, verdicts: Verdicts) -> None:
    path = _cached(args, tmp, f"rebuild-{args.rebuild_n}.db")
    count, built = status_read.ensure_log(path, args.rebuild_n) if args.cache else (0, 0.0)
    if not args.cache:
        start = time.perf_counter()
        count = build_job_log(path, args.rebuild_n)
        built = time.perf_counter() - start
    source = f"built in {built:.1f} s" if built else "reused from --cache"
    with EventLog.open(path) as log:
        store = ProjectionStore(log)
        times = []
        cpu = []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            applied = store.rebuild()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert applied == count, (applied, count)
        jobs = store.count_jobs()
    rate = count / statistics.median(times)
    cpu_rate = count / statistics.median(cpu)
    print(
        f"\nProjection rebuild: ProjectionStore.rebuild() over {count:,} events of {jobs:,} jobs "
        f"(requested, started, progress..., completed/failed, some cleaned; log {source}), median of {args.runs}"
    )
    print(
        f"  {rate:,.0f} events/s ({statistics.median(times):.2f} s); per second of this process's CPU time "
        f"{cpu_rate:,.0f} (the difference is time the machine gave to others, and the commit's fsync)"
    )
    verdicts.check("projection rebuild", rate, f">= {TARGET_REBUILD:,} events/s", rate >= TARGET_REBUILD, "/s")


def run_status(args: argparse.Namespace, tmp: Path, verdicts: Verdicts) -> None:
    small, big = args.status_small, args.status_big
    print(
        f"\nStatus read: median of {args.reads:,} reads of random jobs (100 events each) after one catch-up, "
        "reads alternating between the two logs, each log's picks among as many distinct jobs as the small "
        "log has; lookup = remembered reads dropped first, poll = remembered"
    )
    homes: dict[int, Path] = {}
    built: dict[int, float] = {}
    counts: dict[int, int] = {}
    for total in (small, big):
        homes[total] = _cached(args, tmp, f"status-{total}")
        homes[total].mkdir(exist_ok=True)
        counts[total], built[total] = status_read.ensure_log(homes[total] / "events.db", total)
    results = status_read.measure_store({t: h / "events.db" for t, h in homes.items()}, args.reads)
    tool = status_read.measure_tool(homes, max(200, args.reads // 4))
    for total in (small, big):
        r = results[total]
        how = f"built in {built[total]:.1f} s" if built[total] else "reused"
        print(
            f"  {counts[total]:>9,} events ({r['jobs']:,.0f} jobs, log {how}, first catch-up {r['catch_up']:.2f} s): "
            f"store.job() lookup {r['job'] * 1e6:6.1f} us, poll {r['poll'] * 1e6:5.1f} us   "
            f"salesforce_backup_status(job_id) {tool[total] * 1e6:6.1f} us   "
            f"jobs(limit=20)+count_jobs() {r['list'] * 1e6:6.1f} us"
        )
    ratio = results[big]["job"] / results[small]["job"]
    poll_ratio = results[big]["poll"] / results[small]["poll"]
    tool_ratio = tool[big] / tool[small]
    list_ratio = results[big]["list"] / results[small]["list"]
    print(
        f"  {big:,} / {small:,} events: store.job() lookup {ratio:.2f}x, poll {poll_ratio:.2f}x   "
        f"status tool {tool_ratio:.2f}x   "
        f"listing {list_ratio:.2f}x (the listing counts every job row; informational)"
    )
    label = f"status read store.job() lookup, {big:,} vs {small:,} events"
    verdicts.check(label, ratio, f"<= {TARGET_STATUS}x", ratio <= TARGET_STATUS)
    label = f"status tool salesforce_backup_status, {big:,} vs {small:,}"
    verdicts.check(label, tool_ratio, f"<= {TARGET_STATUS}x", tool_ratio <= TARGET_STATUS)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    parts = set(args.only or ["append", "rebuild", "status"])
    base = args.tmp or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    try:
        from importlib.metadata import version

        versions = f"eventsourcing {version('eventsourcing')}, orjson {version('orjson')}"
    except Exception:
        versions = "eventsourcing not installed"
    with tempfile.TemporaryDirectory(prefix="sfbackup-bench-", dir=base) as name:
        tmp = Path(name)
        print("sfbackup event log benchmark")
        print(f"  command: python bench/events.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
        print(
            f"  Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}; "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
        )
        print(
            f"  databases in {tmp} ({_filesystem(tmp)}), fsync median {_fsync_ms(tmp):.2f} ms; "
            f"every store runs WAL with synchronous={SYNCHRONOUS}"
        )
        verdicts = Verdicts()
        started = time.perf_counter()
        if "append" in parts:
            run_append(args, tmp, verdicts)
        if "rebuild" in parts:
            run_rebuild(args, tmp, verdicts)
        if "status" in parts:
            run_status(args, tmp, verdicts)
        print(f"\nTargets ({time.perf_counter() - started:.0f} s in all):")
        print("\n".join(verdicts.lines))
    return 1 if verdicts.failed else 0


if __name__ == "__main__":
    sys.exit(main())
