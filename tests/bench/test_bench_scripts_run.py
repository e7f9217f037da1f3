"""The benchmark scripts are run by hand, so nothing else notices when a refactor breaks one: run
each at a tiny size and check it prints its verdict lines (numbers are not asserted here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_events_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    out = _run(
        [
            "bench/events.py",
            "--n",
            "300",
            "--single-n",
            "30",
            "--runs",
            "1",
            "--rebuild-n",
            "600",
            "--status-small",
            "100",
            "--status-big",
            "400",
            "--reads",
            "20",
            "--tmp",
            str(tmp_path),
        ],
        tmp_path,
    )
    for verdict in ("batched append", "projection rebuild", "status read"):
        assert verdict in out, out[-2000:]


def test_follow_latency_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    out = _run(["bench/follow_latency.py", "--sparse", "3", "--burst", "5"], tmp_path)
    assert "p95" in out, out[-2000:]


@pytest.mark.slow
def test_mcp_latency_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    out = _run(
        [
            "bench/mcp_latency.py",
            "--samples",
            "5",
            "--backup-samples",
            "2",
            "--history-jobs",
            "3",
            "--events-per-job",
            "5",
        ],
        tmp_path,
    )
    assert "floor" in out and "status" in out, out[-2000:]
    assert "the same answer from a bare server" in out, out[-2000:]  # the page floor ran
    assert "in-process request_backup" in out and "after 10 ms idle" in out, out[-2000:]
    # The history's page is judged against the bare server sending that very page.
    assert "history-list  page" in out and ("x  ok" in out or "MISS (status/page" in out), out[-2000:]


def test_mcp_latency_bench_times_only_the_phases_asked_for(tmp_path: Path) -> None:
    args = ["bench/mcp_latency.py", "--samples", "4", "--backup-samples", "2", "--phases", "idle", "--no-in-process"]
    out = _run(args, tmp_path)
    rows = [line.split()[:3] for line in out.splitlines() if line.startswith(("legacy ", "auto "))]
    assert {tuple(r[:2]) for r in rows if r[1] != "load"} == {
        (era, phase) for era in ("legacy", "auto") for phase in ("idle", "idle-list")
    }, out[-2000:]
    assert ["legacy", "idle", "backup"] in rows and ["auto", "idle", "backup"] in rows, out[-2000:]
    assert "in-process" not in out, out[-2000:]


def test_mcp_latency_bench_refuses_an_unknown_phase(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/mcp_latency.py", "--phases", "idle,warp"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "phases are idle, load, history; got 'idle,warp'" in result.stderr, result.stderr[-2000:]


def test_export_bench_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    out = _run(["bench/export.py", "--scale", "0.001", "--cache", str(tmp_path / "pages")], tmp_path)
    for verdict in ("ours / naive", "ours / raw", "ours peak RSS", "ours API calls", "pages from the cache"):
        assert verdict in out, out[-2000:]
    assert "ours' Bulk block pass: C (_bulkscan)" in out, out[-2000:]  # the figures are of the C road
    assert ", 0 rendered" in out or ", 1 rendered" in out, out[-2000:]  # the timed runs read the warmed cache
