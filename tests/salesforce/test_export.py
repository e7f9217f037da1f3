"""The export engine against the fake org, in-process (no MCP, no worker): exactness and options."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.config import Credentials
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import ExportFailedError
from plugin.salesforce.export import Exporter, ExportResult
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.plan import ObjectSelection, UnknownObjectsError
from plugin.salesforce.progress import Progress
from tests.orgdata import expected_cell, load_objects

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"


@pytest.fixture(scope="module")
def mini_org() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(MINI, page_size=2) as fake:
        yield fake


def run_export(fake: Any, target: Path, **options: Any) -> tuple[ExportResult, list[ObjectSelection], list[Progress]]:
    creds = Credentials(kind="session", instance_url=fake.instance_url, access_token=fake.access_token)
    client = OrgClient(creds, api_version="62.0", extra_ca=Path(fake.ca_bundle))
    plans: list[ObjectSelection] = []
    progress: list[Progress] = []
    try:
        identity = client.identity()
        exporter = Exporter(
            client,
            identity,
            ExportOptions(job_id="job1", **options),
            target,
            on_plan=plans.append,
            on_progress=progress.append,
            log_head=lambda: (7, "ab" * 32),
        )
        return exporter.run(), plans, progress
    finally:
        client.close()


def read_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return list(csv.DictReader(fh, strict=True))


def test_every_value_round_trips_exactly_across_many_pages(mini_org: Any, tmp_path: Path) -> None:
    result, _, _ = run_export(mini_org, tmp_path / "b", backup_type="full")
    for name, obj in load_objects(MINI).items():
        rows = {r["Id"]: r for r in read_rows(result.directory / "data" / f"{name}.csv")}
        types = {f["name"]: f["type"] for f in obj.fields}
        assert len(rows) == len(obj.records), name
        for record in obj.records:
            for field, value in record.items():
                if field in rows[record["Id"]]:
                    assert rows[record["Id"]][field] == expected_cell(value, types.get(field)), (name, field)


def test_negative_zero_and_exponents_keep_their_literal_text(mini_org: Any, tmp_path: Path) -> None:
    result, _, _ = run_export(mini_org, tmp_path / "b", objects_filter=("Account",))
    values = {v for r in read_rows(result.directory / "data" / "Account.csv") for v in r.values()}
    assert {"-0", "1e5", "1E-7", "-0.0", "12345678901234567890.123456789"} <= values


def test_describes_are_saved_byte_for_byte(mini_org: Any, tmp_path: Path) -> None:
    import requests

    result, _, _ = run_export(mini_org, tmp_path / "b", objects_filter=("Account",))
    session = requests.Session()
    session.trust_env = False
    url = f"{mini_org.instance_url}/services/data/v62.0/sobjects/Account/describe"
    served = session.get(
        url,
        headers={"Authorization": f"Bearer {mini_org.access_token}", "X-PrettyPrint": "1"},
        verify=str(mini_org.ca_bundle),
    ).content
    session.close()
    assert (result.directory / "describe" / "Account.json").read_bytes() == served


def test_recycle_bin_bodies_and_empty_bodies_are_reported(mini_org: Any, tmp_path: Path) -> None:
    result, _, _ = run_export(mini_org, tmp_path / "b", backup_type="full")
    manifest = result.manifest
    with open(result.directory / "files" / "index.csv", encoding="utf-8", newline="") as fh:
        index = {r["record_id"]: r for r in csv.DictReader(fh)}
    # the deleted attachment's body is still served by the fake, so it is kept
    assert set(index) == {"00P000000000001EAA", "00P000000000003EAA"}
    notes = {w["record_id"]: w for w in manifest["warnings"]}
    assert set(notes) == {"00P000000000002EAA"}
    assert notes["00P000000000002EAA"]["note"].startswith("no body")
    assert manifest["files"]["count"] == 2 and manifest["files"]["bytes"] == 305
    assert manifest["files"]["by_object"] == {"Attachment": {"count": 2, "bytes": 305}}


def test_manifest_records_counts_checksums_and_the_log_head(mini_org: Any, tmp_path: Path) -> None:
    result, plans, progress = run_export(mini_org, tmp_path / "b", backup_type="full")
    m = json.loads((result.directory / "manifest.json").read_text(encoding="utf-8"))
    assert m["event_log_head"] == {"position": 7, "hash": "ab" * 32}
    assert m["objects"]["Account"]["records"] == 20
    assert m["objects"]["Account"]["deleted_records"] == 1
    assert m["objects"]["Account"]["compound_fields_omitted"] == ["BillingAddress", "ShippingAddress"]
    assert m["api_calls"] >= 10
    assert plans[0].objects == ["Account", "Attachment", "Contact", "Organization"]
    finished = [p.object_finished["object"] for p in progress if p.object_finished]
    assert finished == plans[0].objects
    assert not (tmp_path / "b.partial").exists()


def test_compression_gzips_each_csv_and_says_so(mini_org: Any, tmp_path: Path) -> None:
    result, _, _ = run_export(mini_org, tmp_path / "b", objects_filter=("Contact",), compression=True)
    entry = result.manifest["objects"]["Contact"]
    assert entry["file"] == "data/Contact.csv.gz" and entry["compression"] == "gzip"
    assert len(read_rows(result.directory / entry["file"])) == 4


def test_files_only_exports_file_objects_and_bodies(mini_org: Any, tmp_path: Path) -> None:
    result, plans, _ = run_export(mini_org, tmp_path / "b", backup_type="files_only")
    assert plans[0].objects == ["Attachment"]
    assert sorted(p.name for p in (result.directory / "data").iterdir()) == ["Attachment.csv"]
    assert result.files == 2


def test_progress_carries_the_file_total_from_the_start_of_the_downloads(mini_org: Any, tmp_path: Path) -> None:
    result, _, progress = run_export(mini_org, tmp_path / "b", backup_type="files_only")
    downloading = [p for p in progress if p.phase in ("downloading_files", "writing_manifest")]
    # Three bodies to fetch; one record turns out to have none (a warning, not a file).
    assert (downloading[0].phase, downloading[0].files, downloading[0].files_total) == ("downloading_files", 0, 3)
    assert {p.files_total for p in downloading} == {3}
    absent = [w["record_id"] for w in result.manifest["warnings"] if not w["downloaded"]]
    assert (downloading[-1].files, result.files, absent) == (2, 2, ["00P000000000002EAA"])
    assert {p.files_total for p in progress if p.phase == "exporting"} == {None}


def test_excluding_attachments_records_the_reason(mini_org: Any, tmp_path: Path) -> None:
    result, _, _ = run_export(mini_org, tmp_path / "b", include_attachments=False)
    assert result.manifest["objects"]["Attachment"] == {
        "status": "skipped",
        "reason": "excluded by include_attachments=false",
        "records": 0,
    }
    assert result.files == 0


def test_incremental_window_exports_only_rows_changed_after_since(mini_org: Any, tmp_path: Path) -> None:
    since = "2024-02-10T12:00:00Z"
    result, _, _ = run_export(
        mini_org, tmp_path / "b", backup_type="incremental", since=since, objects_filter=("Account",)
    )
    org = load_objects(MINI)["Account"].records
    want = {r["Id"] for r in org if r["SystemModstamp"] > "2024-02-10T12:00:00.000+0000"}
    got = {r["Id"] for r in read_rows(result.directory / "data" / "Account.csv")}
    assert got == want and 0 < len(got) < len(org)
    assert result.manifest["objects"]["Account"]["window"] == {"field": "SystemModstamp", "after": since}


def test_unknown_objects_in_the_filter_fail_with_close_matches(mini_org: Any, tmp_path: Path) -> None:
    with pytest.raises(UnknownObjectsError, match="did you mean Account"):
        run_export(mini_org, tmp_path / "b", objects_filter=("Acount",))


def test_an_existing_backup_folder_is_never_overwritten(mini_org: Any, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    with pytest.raises(ExportFailedError, match="refusing to overwrite"):
        run_export(mini_org, tmp_path / "b")
