#!/usr/bin/env python3
"""Commit-to-notice latency of the follower, per notification method, in one run.

    .venv/bin/python bench/follow_latency.py [--sparse 50] [--burst 500] [--variants]

For each method a writer *process* appends one event per commit, sparse (every 100 ms) and then
burst (every 2 ms), and reports when each COMMIT returned (CLOCK_MONOTONIC, shared by processes on
Linux). The follower in this process records when it yielded each event. Printed: p50/p95/max
latency in ms and this process's CPU (all threads, watchfiles' included) as % of one core.
Target: p95 <= 20 ms. ``--variants`` adds watchfiles with step 5 ms and with its library defaults
(debounce 1600, step 50).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from events import EventLog, NewEvent  # noqa: E402
from events.follow import Follower  # noqa: E402
from events.watch import DataVersionHints, Hints, WalWatchHints  # noqa: E402

WRITER = r"""
import sys, time
from events import EventLog, NewEvent
path, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with EventLog.open(path) as log:
    out = []
    next_at = time.monotonic() + 0.2
    for i in range(count):
        time.sleep(max(0.0, next_at - time.monotonic()))
        (position,) = log.append("job-bench", [NewEvent("job.progress", {"records": i})], expected_version=None)
        out.append(f"{position} {time.monotonic()!r}")
        next_at += gap
print("\n".join(out))
"""


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def run_mode(path: Path, make: Callable[[EventLog], Hints], count: int, gap: float) -> tuple[list[float], float]:
    """Follow one writer run; return the sorted latencies (ms) and the reader's CPU share (%)."""
    with EventLog.open(path) as log:
        start = log.head()[0]
        follower = Follower(log, after=start, hints=make(log))
        try:
            follower.poll()  # arm the hints before the writer starts
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), str(count), str(gap)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            cpu0, wall0 = time.process_time(), time.monotonic()
            seen: dict[int, float] = {}
            for event in follower.events(timeout=count * gap + 30):
                seen[event.position] = time.monotonic()
                if len(seen) == count:
                    break
            cpu1, wall1 = time.process_time(), time.monotonic()
            out, _ = writer.communicate(timeout=60)
        finally:
            follower.close()
    committed = {int(p): float(t) for p, t in (line.split() for line in out.splitlines())}
    if set(committed) != set(seen):
        raise SystemExit(f"follower missed events: {sorted(set(committed) - set(seen))[:10]}")
    latencies = sorted((seen[p] - committed[p]) * 1000 for p in committed)
    return latencies, 100 * (cpu1 - cpu0) / (wall1 - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparse", type=int, default=50, help="events at 100 ms intervals")
    parser.add_argument("--burst", type=int, default=500, help="events at 2 ms intervals")
    parser.add_argument(
        "--variants", action="store_true", help="also watchfiles with step 5, and with its defaults (1600/50)"
    )
    args = parser.parse_args()
    methods: list[tuple[str, Callable[[EventLog], Hints]]] = [
        ("data_version every 10 ms (default)", lambda log: DataVersionHints(log, interval=0.01)),
        ("watchfiles -wal, debounce 20 step 1", lambda log: WalWatchHints(log, debounce=20, step=1)),
    ]
    if args.variants:
        methods.append(("watchfiles -wal, debounce 20 step 5", lambda log: WalWatchHints(log, debounce=20, step=5)))
        methods.append(
            ("watchfiles -wal, debounce 1600 step 50", lambda log: WalWatchHints(log, debounce=1600, step=50))
        )
    print(f"sparse: {args.sparse} events every 100 ms; burst: {args.burst} events every 2 ms; one commit each")
    header = f"{'method':<40} {'sparse p50/p95/max ms':>22} {'burst p50/p95/max ms':>22} {'CPU sparse/burst':>18}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.db"
        with EventLog.open(path) as log:
            log.append("job-bench", [NewEvent("job.progress", {"records": -1})], expected_version=None)
        for name, make in methods:
            cells = []
            cpus = []
            for count, gap in ((args.sparse, 0.1), (args.burst, 0.002)):
                lat, cpu = run_mode(path, make, count, gap)
                cells.append(f"{percentile(lat, 0.5):.1f} / {percentile(lat, 0.95):.1f} / {lat[-1]:.1f}")
                cpus.append(f"{cpu:.1f} %")
            print(f"{name:<40} {cells[0]:>22} {cells[1]:>22} {' / '.join(cpus):>18}")


if __name__ == "__main__":
    main()
