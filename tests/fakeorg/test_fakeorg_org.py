"""Loading org folders: CSV typing, defaults, the built-in Organization, and clear errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from plugin.fakeorg import FakeOrgError, load_org, to18
from plugin.fakeorg.describes import make_field, make_sobject, with_version
from plugin.fakeorg.jsonlit import Lit

MINI = Path(__file__).parent / "orgs" / "mini"


def write_org(root: Path, *, records_csv: str | None = None, global_body: dict[str, object] | None = None) -> Path:
    fields = [
        make_field("Id", "id"),
        make_field("Name", "string"),
        make_field("Amount__c", "currency"),
        make_field("Active__c", "boolean"),
        make_field("Due__c", "date"),
    ]
    (root / "describe").mkdir(parents=True)
    (root / "describe" / "Thing__c.json").write_text(
        json.dumps(make_sobject("Thing__c", "a01", fields)), encoding="utf-8"
    )
    if records_csv is not None:
        (root / "records").mkdir()
        (root / "records" / "Thing__c.csv").write_bytes(records_csv.encode("utf-8"))
    if global_body is not None:
        (root / "describe" / "_global.json").write_text(json.dumps(global_body), encoding="utf-8")
    return root


def test_csv_values_are_typed_by_the_describe(tmp_path: Path) -> None:
    org = load_org(write_org(tmp_path / "o", records_csv="Id,name,Amount__c,Active__c,Due__c\r\n,x,1.50,TRUE,\r\n"))
    table = org.table("thing__C")
    assert table is not None
    [record] = list(table.records())
    assert record == {"Id": record["Id"], "Name": "x", "Amount__c": "1.50", "Active__c": True, "Due__c": None}
    assert type(record["Amount__c"]) is Lit and record["Id"] == to18("a01000000000001")


def test_bad_number_in_csv_names_the_file_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(FakeOrgError, match=r"Thing__c.csv:2 column 'Amount__c': '1,000' is not a number"):
        load_org(write_org(tmp_path / "o", records_csv='Id,Amount__c\n,"1,000"\n'))


def test_missing_folder_and_empty_describe_dir_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FakeOrgError, match="does not exist"):
        load_org(tmp_path / "absent")
    (tmp_path / "empty" / "describe").mkdir(parents=True)
    with pytest.raises(FakeOrgError, match=r"no <Object>\.json describe files"):
        load_org(tmp_path / "empty")


def test_records_without_a_describe_are_refused(tmp_path: Path) -> None:
    root = write_org(tmp_path / "o")
    (root / "records").mkdir()
    (root / "records" / "Ghost.json").write_text("[]", encoding="utf-8")
    with pytest.raises(FakeOrgError, match=r"Ghost\.json has no describe/Ghost\.json"):
        load_org(root)


def test_default_org_id_is_derived_from_the_folder_name(tmp_path: Path) -> None:
    first = load_org(write_org(tmp_path / "a" / "acme"))
    second = load_org(write_org(tmp_path / "b" / "acme"))
    assert first.org_id == second.org_id and first.org_id.startswith("00D")


def test_builtin_organization_has_the_org_id(tmp_path: Path) -> None:
    org = load_org(write_org(tmp_path / "o"))
    table = org.table("Organization")
    assert table is not None
    [record] = list(table.records())
    assert record["Id"] == org.org_id and table.field("issandbox") is not None


def test_global_file_entries_without_a_describe_are_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [{"name": "Thing__c", "queryable": True}, {"name": "Missing", "queryable": True}],
    }
    with caplog.at_level(logging.WARNING):
        org = load_org(write_org(tmp_path / "o", global_body=body))
    assert [e["name"] for e in org.global_body["sobjects"]] == ["Thing__c", "Organization"]
    assert "Missing" in caplog.text


def test_with_version_rewrites_only_rest_paths() -> None:
    body = {"urls": {"sobject": "/services/data/vxx.0/sobjects/A", "ui": "https://x/{ID}"}, "n": Lit("1")}
    assert with_version(body, "62.0") == {
        "urls": {"sobject": "/services/data/v62.0/sobjects/A", "ui": "https://x/{ID}"},
        "n": "1",
    }


def test_mini_org_loads(tmp_path: Path) -> None:
    copy = shutil.copytree(MINI, tmp_path / "mini")
    org = load_org(copy)
    assert org.org_id == "00D000000000042EAA"
    assert sorted(org.tables) == ["account", "attachment", "contact", "organization"]
