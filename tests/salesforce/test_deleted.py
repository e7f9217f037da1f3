"""Deletions of an incremental window from Get Deleted, and a refusal that is recorded, not fatal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.salesforce.exports import export, read_rows

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"
SINCE = {"backup_type": "incremental", "since": "2024-01-01T00:00:00Z", "window_source": "since_date"}


@pytest.fixture(scope="module")
def mini() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(MINI) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(mini: Any) -> None:
    mini.reset()


def test_the_delete_log_of_the_window_lands_beside_the_csv(mini: Any, tmp_path: Path) -> None:
    run = export(mini, tmp_path / "b", objects_filter=("Account",), compression=True, **SINCE)
    entry = run.manifest["objects"]["Account"]["deleted"]
    deleted = [r for r in read_rows(run.directory / "data" / "Account.csv.gz") if r["IsDeleted"] == "true"]
    assert [r["Id"] for r in read_rows(run.directory / entry["file"])] == [r["Id"] for r in deleted]
    assert entry["file"] == "data/Account.deleted.csv.gz" and entry["records"] == len(deleted) == 1
    assert (entry["start"], entry["status"]) == ("2024-01-01T00:00:00+00:00", "captured")
    assert "data/Account.deleted.csv.gz" in [f["file"] for f in run.manifest["compression"]["files"]]
    calls = [e.path for e in mini.request_log if e.path.endswith("/deleted/") or e.path.endswith("/deleted")]
    assert calls == ["/services/data/v62.0/sobjects/Account/deleted/"]


def test_a_refused_delete_log_is_recorded_and_the_backup_completes(mini: Any, tmp_path: Path) -> None:
    mini.add_fault(
        {
            "action": "respond",
            "status": 400,
            "error_code": "INVALID_REPLICATION_DATE",
            "message": "startDate is before the earliest date available",
            "path": "/deleted",
        }
    )
    run = export(mini, tmp_path / "b", objects_filter=("Account",), **SINCE)
    entry = run.manifest["objects"]["Account"]["deleted"]
    assert entry["status"] == "not captured" and entry["reason"].startswith("INVALID_REPLICATION_DATE: startDate")
    assert not (run.directory / "data" / "Account.deleted.csv").exists()
