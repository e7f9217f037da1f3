"""A million generated rows through REST paging and Bulk CSV pages, served by `sfbackup fake-org serve`
in a subprocess whose peak RSS must stay bounded (the rows are never held in memory)."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from plugin.fakeorg.generators import generated_id
from tests.fakeorg.genorg import generated_org

pytestmark = pytest.mark.slow

ROWS = 1_000_000
DELETED = ROWS // 50
PEAK_RSS_LIMIT_MB = 200
SOQL = "SELECT Id, Name, SystemModstamp FROM Account"


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    root = generated_org(
        tmp_path_factory.mktemp("volume") / "org",
        {"Account": {"count": ROWS, "seed": 7}},
        objects=("Account",),
        extra={"bulk": {"polls_to_complete": 1}},
    )
    sfbackup = Path(sys.executable).parent / "sfbackup"
    proc = subprocess.Popen(
        [str(sfbackup), "fake-org", "serve", "--org", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "fake org did not print its JSON line within 60 s"
        yield proc, json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def sf(served: tuple[subprocess.Popen[str], dict[str, Any]]) -> Iterator[Salesforce]:
    info = served[1]
    with requests.Session() as session:
        session.verify = info["ca_bundle"]
        session.trust_env = False
        yield Salesforce(instance_url=info["instance_url"], session_id=info["access_token"], session=session)


def test_a_million_rows_through_rest_pages(
    served: tuple[subprocess.Popen[str], dict[str, Any]], sf: Salesforce
) -> None:
    started = time.monotonic()
    count = 0
    headers = {"Sforce-Query-Options": "batchSize=2000"}
    for count, record in enumerate(sf.query_all_iter(SOQL, include_deleted=True, headers=headers), start=1):
        if record["Id"] != generated_id("001", count - 1):
            raise AssertionError(f"row {count}: {record['Id']}")
    assert count == ROWS
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == ROWS - DELETED
    peak = peak_rss_mb(served[0].pid)
    print(f"\nREST: {ROWS} rows in {time.monotonic() - started:.1f} s; server peak RSS {peak:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT_MB


def test_a_million_rows_through_bulk_csv_pages(
    served: tuple[subprocess.Popen[str], dict[str, Any]], sf: Salesforce
) -> None:
    started = time.monotonic()
    sizes = [page.count("\n") - 1 for page in sf.bulk2.Account.query(SOQL, max_records=100_000, wait=0)]
    assert sizes == [50_000] * 19 + [30_000] and sum(sizes) == ROWS - DELETED  # page_size caps maxRecords
    assert sf.restful("limits/recordCount", params={"sObjects": "Account"}) == {
        "sObjects": [{"count": ROWS - DELETED, "name": "Account"}]
    }
    peak = peak_rss_mb(served[0].pid)
    print(f"\nBulk: {sum(sizes)} rows in {time.monotonic() - started:.1f} s; server peak RSS {peak:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT_MB
