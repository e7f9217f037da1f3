"""Each salesforce_backup option changes what a real export against the fake org writes.

(parallel_downloads: test_downloads.py; content_versions: test_links.py; windows: tests/jobs.)
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_ORG
from tests.salesforce.exports import export, index_rows, read_rows

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(DEMO_ORG, page_size=250) as fake:
        yield fake


@pytest.fixture(scope="module")
def mini() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(MINI, page_size=2) as fake:
        yield fake


def kinds(directory: Path) -> set[str]:
    return {row["object"] for row in index_rows(directory).values()}


def test_include_files_and_documents_false_leave_only_attachments(demo: Any, tmp_path: Path) -> None:
    run = export(
        demo,
        tmp_path / "b",
        backup_type="files_only",
        include_files=False,
        include_documents=False,
        parallel_downloads=10,
    )
    assert run.plans[0].objects == ["Attachment"]
    skipped = {s.object: s.reason for s in run.plans[0].skipped}
    assert skipped == {
        "ContentDocument": "excluded by include_files=false",
        "ContentDocumentLink": "excluded by include_files=false",
        "ContentVersion": "excluded by include_files=false",
        "Document": "excluded by include_documents=false",
    }
    assert kinds(run.directory) == {"Attachment"} and run.result.files == 40
    assert run.manifest["objects"]["Document"]["status"] == "skipped"


def test_include_attachments_false_leaves_files_and_documents(demo: Any, tmp_path: Path) -> None:
    run = export(demo, tmp_path / "b", backup_type="files_only", include_attachments=False, parallel_downloads=10)
    assert run.plans[0].objects == ["ContentDocument", "ContentVersion", "Document", "ContentDocumentLink"]
    assert kinds(run.directory) == {"ContentVersion", "Document"}
    assert not (run.directory / "data" / "Attachment.csv").exists()
    docs = {r["record_id"]: r for r in index_rows(run.directory).values() if r["object"] == "Document"}
    # Document.Type is the extension; a Type that tries a traversal gives none (and no escape)
    assert {Path(r["path"]).suffix for r in docs.values()} == {".png", ".docx", ".pdf", ".txt", ".html", ".csv", ""}
    assert all(r["path"].startswith("files/Document/") for r in docs.values())


def test_objects_filter_exports_exactly_the_named_objects(mini: Any, tmp_path: Path) -> None:
    run = export(mini, tmp_path / "b", backup_type="full", objects_filter=("Contact", "Account"))
    assert run.plans[0].objects == ["Account", "Contact"] and run.plans[0].skipped == []
    assert sorted(p.name for p in (run.directory / "data").iterdir()) == ["Account.csv", "Contact.csv"]
    assert run.manifest["options"]["objects_filter"] == ["Contact", "Account"]


def test_compression_gzips_every_csv_readably_and_the_manifest_says_how(mini: Any, tmp_path: Path) -> None:
    plain = export(mini, tmp_path / "plain", backup_type="full")
    packed = export(mini, tmp_path / "packed", backup_type="full", compression=True)
    section = packed.manifest["compression"]
    assert (section["algorithm"], section["level"]) == ("gzip", 9)
    names = sorted(p.name for p in (packed.directory / "data").iterdir())
    assert names == ["Account.csv.gz", "Attachment.csv.gz", "Contact.csv.gz", "Organization.csv.gz"]
    assert [f["file"] for f in section["files"]] == [f"data/{n}" for n in names]
    for listed in section["files"]:
        gz = packed.directory / listed["file"]
        original = (plain.directory / listed["file"].removesuffix(".gz")).read_bytes()
        assert gzip.decompress(gz.read_bytes()) == original  # the same CSV, byte for byte
        assert listed["content_sha256"] == hashlib.sha256(original).hexdigest()
        assert listed["content_bytes"] == len(original) and listed["bytes"] == gz.stat().st_size
    for name, entry in packed.manifest["objects"].items():
        assert entry["compression"] == "gzip"
        assert entry["sha256"] == hashlib.sha256((packed.directory / entry["file"]).read_bytes()).hexdigest(), name
    assert packed.manifest["options"]["compression"] == "gzip"
    assert plain.manifest["compression"] == {"algorithm": None, "files": []}
    assert len(read_rows(packed.directory / "data" / "Account.csv.gz")) == 20
    # bodies and the index are never compressed
    assert (packed.directory / "files" / "index.csv").read_bytes() == (
        plain.directory / "files" / "index.csv"
    ).read_bytes()
