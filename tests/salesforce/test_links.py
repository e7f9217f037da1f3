"""ContentDocumentLink: filtered queries per chunk of ContentDocumentIds, and files/index.csv mapping
every file to its records; content_versions=latest."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.salesforce import links
from tests.conftest import DEMO_ORG
from tests.orgdata import expected_cell, load_objects
from tests.salesforce.exports import export, index_rows, read_rows


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(DEMO_ORG, page_size=250) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(demo: Any) -> None:
    demo.reset()


def org_links() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for link in load_objects(DEMO_ORG)["ContentDocumentLink"].records:
        out.setdefault(link["ContentDocumentId"], set()).add(link["LinkedEntityId"])
    return out


def link_queries(fake: Any) -> list[str]:
    return [
        e.query_string
        for e in fake.request_log
        if "ContentDocumentLink" in e.query_string and e.query_string.startswith("q=")
    ]


def test_links_are_exported_in_chunks_of_document_ids_and_map_every_file_to_its_records(
    demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links, "CHUNK_IDS", 7)
    run = export(demo, tmp_path / "b", backup_type="full", objects_filter=("ContentVersion",))
    assert run.plans[0].objects == ["ContentVersion", "ContentDocumentLink"]  # links last: they need the ids
    entry = run.manifest["objects"]["ContentDocumentLink"]
    assert entry["filter"] == {
        "field": "ContentDocumentId",
        "ids_from": "ContentDocument.Id",
        "ids": 26,
        "queries": 4,
        "ids_per_query": 7,
    }
    assert "ContentVersion was selected" in entry["included_because"]
    queries = link_queries(demo)
    assert len(queries) == 4 and all("ContentDocumentId+IN+%28%27069" in q for q in queries)
    # every row, every field, exactly as the org holds it
    org = load_objects(DEMO_ORG)["ContentDocumentLink"]
    rows = {r["Id"]: r for r in read_rows(run.directory / "data" / "ContentDocumentLink.csv")}
    assert len(rows) == len(org.records) == entry["records"] == 99
    for record in org.records:
        assert {k: rows[record["Id"]][k] for k in record} == {k: expected_cell(v) for k, v in record.items()}
    # every version of every file (content_versions="all", the default), each naming every record
    # it is linked to, owner included
    wanted = org_links()
    index = index_rows(run.directory)
    assert set(index) == {v["Id"] for v in load_objects(DEMO_ORG)["ContentVersion"].records}
    assert {r["is_latest"] for r in index.values()} == {"true", "false"}
    assert run.manifest["options"]["content_versions"] == "all"
    for row in index.values():
        assert set(row["linked_record_ids"].split(";")) == wanted[row["content_document_id"]]


def test_without_content_document_the_ids_come_from_content_versions(demo: Any, tmp_path: Path) -> None:
    from plugin.fakeorg import start_fake_org

    org = tmp_path / "org"
    shutil.copytree(DEMO_ORG, org, ignore=shutil.ignore_patterns("blobs"))
    (org / "describe" / "ContentDocument.json").unlink()
    (org / "records" / "ContentDocument.json").unlink()
    with start_fake_org(org) as fake:
        run = export(fake, tmp_path / "b", backup_type="full", objects_filter=("ContentDocumentLink",))
    entry = run.manifest["objects"]["ContentDocumentLink"]
    assert entry["filter"]["ids_from"] == "ContentVersion.ContentDocumentId"
    assert entry["records"] == 99 and "included_because" not in entry


def test_latest_content_versions_only_back_up_current_versions_with_every_link(demo: Any, tmp_path: Path) -> None:
    run = export(
        demo, tmp_path / "b", backup_type="files_only", objects_filter=("ContentVersion",), content_versions="latest"
    )
    versions = load_objects(DEMO_ORG)["ContentVersion"].records
    latest = {v["Id"] for v in versions if v["IsLatest"]}
    assert 0 < len(latest) < len(versions)
    assert {r["Id"] for r in read_rows(run.directory / "data" / "ContentVersion.csv")} == latest
    assert set(index_rows(run.directory)) == latest and run.result.files == len(latest)
    assert run.manifest["options"]["content_versions"] == "latest"
    assert run.manifest["objects"]["ContentVersion"]["content_versions"].startswith("latest")
    assert run.manifest["objects"]["ContentDocumentLink"]["records"] == 99
    soql = [
        e.query_string
        for e in demo.request_log
        if "FROM+ContentVersion" in e.query_string and "Title" in e.query_string
    ]
    assert soql and all("IsLatest+%3D+true" in q for q in soql)
