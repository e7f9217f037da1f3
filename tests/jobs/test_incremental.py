"""Incremental backups through the job runtime and worker (in-process): the window comes from the
backup catalog or since_date, holds exactly the changed and deleted rows, and the manifest names
the base backup and the window."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plugin.fakeorg import start_fake_org
from plugin.fakeorg.describes import make_field
from plugin.jobs.options import validate_request
from plugin.jobs.runtime import JobRuntime
from plugin.jobs.worker import JobWorker
from plugin.salesforce.window import OVERLAP, parse_instant, soql_datetime
from tests.salesforce.exports import read_rows

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"
ACCOUNTS = "records/Account.json"


def sf_stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def org_copy(tmp_path: Path) -> Path:
    """The mini org plus Log__c, an object with neither SystemModstamp nor LastModifiedDate."""
    org = tmp_path / "org"
    shutil.copytree(MINI, org)
    log_fields = [make_field("Id", "id"), make_field("Name", "string"), make_field("CreatedDate", "datetime")]
    describe = {"name": "Log__c", "keyPrefix": "a01", "queryable": True, "replicateable": False, "fields": log_fields}
    (org / "describe" / "Log__c.json").write_text(json.dumps(describe), encoding="utf-8")
    rows = [
        {"Id": f"a0100000000000{n}AAA", "Name": f"entry {n}", "CreatedDate": "2024-05-01T00:00:00.000+0000"}
        for n in (1, 2, 3)
    ]
    (org / "records" / "Log__c.json").write_text(json.dumps(rows), encoding="utf-8")
    # Real orgs keep a delete log for Attachment (replicateable); the mini org's describe says not.
    path = org / "describe" / "Attachment.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text(encoding="utf-8")), "replicateable": True}), encoding="utf-8"
    )
    return org


def backup(home: Path, org: Path, monkeypatch: pytest.MonkeyPatch, **request: Any) -> dict[str, Any]:
    """One job, requested and run by the worker, against the org folder as it is now."""
    with start_fake_org(org) as fake:
        monkeypatch.setenv("SF_INSTANCE_URL", fake.instance_url)
        monkeypatch.setenv("SF_ACCESS_TOKEN", fake.access_token)
        monkeypatch.setenv("SFBACKUP_CA_BUNDLE", str(fake.ca_bundle))
        runtime = JobRuntime(home)
        try:
            job = runtime.start_backup(validate_request(home=home, **request), spawn=False)
        finally:
            runtime.close()
        worker = JobWorker(home, job.job_id)
        try:
            assert worker.run() == 0
        finally:
            worker.log.close()
    manifest: dict[str, Any] = json.loads(Path(job.backup_directory or "", "manifest.json").read_text(encoding="utf-8"))
    return manifest


def edit_accounts(org: Path, changes: dict[str, dict[str, Any]]) -> None:
    body = json.loads((org / ACCOUNTS).read_text(encoding="utf-8"))
    for record in body["records"]:
        record.update(changes.get(record["Id"], {}))
    (org / ACCOUNTS).write_text(json.dumps(body), encoding="utf-8")


def test_incremental_after_a_backup_holds_exactly_the_changed_and_deleted_rows(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = org_copy(tmp_path)
    first = backup(home, org, monkeypatch, backup_type="incremental")
    assert first["window"]["start"] is None and first["window"]["source"].startswith("none: no earlier")
    assert len(read_rows(first_dir(home, first) / "data" / "Account.csv")) == 20

    end = parse_instant(first["window"]["end"])
    now = datetime.now(UTC)
    edit_accounts(
        org,
        {
            "001000000000003AAA": {"Name": "Renamed after the backup", "SystemModstamp": sf_stamp(now)},
            # committed late: stamped before the first backup's end, which did not see it (the overlap)
            "001000000000004AAA": {"Name": "Late commit", "SystemModstamp": sf_stamp(end - timedelta(minutes=2))},
            "001000000000005AAA": {"IsDeleted": True, "SystemModstamp": sf_stamp(now)},
        },
    )
    second = backup(home, org, monkeypatch, backup_type="incremental")
    folder = first_dir(home, second)

    assert second["base_backup"]["job_id"] == first["job_id"]
    window = second["window"]
    assert window["source"] == "last_backup" and window["overlap_seconds"] == OVERLAP.total_seconds()
    assert window["start"] == second["since"] == soql_datetime(end - OVERLAP)
    assert window["end"] == second["started_at"] and window["base_backup"]["window_end"] == first["window"]["end"]

    accounts = {r["Id"]: r for r in read_rows(folder / "data" / "Account.csv")}
    assert set(accounts) == {"001000000000003AAA", "001000000000004AAA", "001000000000005AAA"}
    assert accounts["001000000000003AAA"]["Name"] == "Renamed after the backup"
    assert accounts["001000000000005AAA"]["IsDeleted"] == "true"
    assert second["objects"]["Account"]["window"] == {"field": "SystemModstamp", "after": window["start"]}
    assert read_rows(folder / "data" / "Account.deleted.csv") == [
        {"Id": "001000000000005AAA", "deletedDate": sf_stamp(now)[:19] + ".000+0000"}
    ]
    assert second["objects"]["Account"]["deleted"]["records"] == 1
    assert read_rows(folder / "data" / "Contact.csv") == []  # nothing changed

    # no change-tracking field: every row, and why
    log = second["objects"]["Log__c"]
    assert log["records"] == 3 and "every row exported" in log["window"]["note"]
    assert log["deleted"]["status"] == "not captured" and "not replicateable" in log["deleted"]["reason"]


def first_dir(home: Path, manifest: dict[str, Any]) -> Path:
    (folder,) = [p for p in (home / "backups" / manifest["org_id"]).iterdir() if p.name.endswith(manifest["job_id"])]
    return folder


def test_files_only_since_a_date_backs_up_the_files_changed_since_then(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = backup(home, org_copy(tmp_path), monkeypatch, backup_type="files_only", since_date="2024-04-02")
    folder = first_dir(home, manifest)
    assert manifest["window"]["source"] == "since_date" and manifest["window"]["start"] == "2024-04-02T00:00:00Z"
    assert manifest["options"]["since_date"] == "2024-04-02T00:00:00Z"
    assert sorted(manifest["objects"]) == ["Attachment"]
    # 00P...002 changed exactly at the start (exclusive); 00P...003 later, then went to the recycle bin
    assert [r["Id"] for r in read_rows(folder / "data" / "Attachment.csv")] == ["00P000000000003EAA"]
    assert [r["Id"] for r in read_rows(folder / "data" / "Attachment.deleted.csv")] == ["00P000000000003EAA"]
    assert manifest["files"]["count"] == 1


def test_a_narrower_backup_is_never_the_base_of_an_incremental_one(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = org_copy(tmp_path)
    narrow = backup(home, org, monkeypatch, backup_type="full", objects_filter=["Account"])
    files = backup(home, org, monkeypatch, backup_type="files_only")
    second = backup(home, org, monkeypatch, backup_type="incremental")
    # Contact changes since the Account-only backup would be lost if it were the base
    assert second["window"]["start"] is None and second["window"]["source"].startswith("none: no earlier completed")
    assert second["base_backup"]["newer_backups_passed_over"] == [
        {"job_id": files["job_id"], "reason": "it was a files_only backup"},
        {"job_id": narrow["job_id"], "reason": "it backed up only Account"},
    ]
    assert len(read_rows(first_dir(home, second) / "data" / "Contact.csv")) == 4
    third = backup(home, org, monkeypatch, backup_type="incremental", objects_filter=["Account"])
    assert third["base_backup"]["job_id"] == second["job_id"]  # a full-coverage backup is a base for a narrower one
