"""`sfbackup demo` as a user runs it from a fresh clone: a real process, a real backup, a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.orgdata import blobs, load_objects

pytestmark = pytest.mark.e2e


def test_demo_command_backs_up_the_bundled_org_and_reports_its_figures(home: Path, demo_org: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    result = subprocess.run(
        [sys.executable, "-m", "plugin.cli", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    objects = load_objects(demo_org)
    assert summary["status"] == "completed"
    # The fake org adds the Organization row that every real org has.
    assert summary["objects"] == len(objects) + 1
    assert summary["records"] == sum(len(o.records) for o in objects.values()) + 1
    assert summary["files"] == len(blobs(demo_org))
    assert summary["bytes"] == sum(p.stat().st_size for p in (demo_org / "blobs").glob("*/*/*"))
    assert 0 < summary["backup_seconds"] <= summary["seconds"]
    folder = Path(summary["backup_directory"])
    assert folder.is_relative_to(home) and (folder / "manifest.json").is_file()
