"""Where file bodies go and how files/index.csv links them: pure functions, no network."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from plugin.salesforce.files import FileResult, file_extension, linked_records, tasks_for, write_index

CV = {
    "Id": "0685g00000H8JCwAAN",
    "ContentDocumentId": "0695g00000Z6dv9AAB",
    "VersionNumber": "3",
    "IsLatest": True,
    "PathOnClient": "Quarterly report.txt",
    "FileExtension": "txt",
    "ContentSize": "3139",
    "Checksum": "9E107D9D372BB6826BD81D3542A419D6",
    "FirstPublishLocationId": "0015g00000p8YRRAA2",
}


@pytest.mark.parametrize(
    ("object_name", "record", "ext"),
    [
        ("ContentVersion", {"FileExtension": "pdf", "FileType": "PDF"}, "pdf"),
        ("ContentVersion", {"FileExtension": None, "PathOnClient": "C:\\Users\\Zoë\\report.DOCX"}, "docx"),
        ("Attachment", {"Name": "photo.PNG"}, "png"),
        ("Attachment", {"Name": "README"}, None),
        ("Document", {"Type": "CSV", "Name": "Product sheet"}, "csv"),
        ("Document", {"Type": None, "Name": "logo.svg"}, "svg"),
        # Values that must never become part of a path:
        ("Document", {"Type": "../../etc/cron", "Name": "Travel policy"}, None),
        ("Attachment", {"Name": "evil./../../x"}, None),
        ("Attachment", {"Name": "a.b/c"}, None),
        ("Attachment", {"Name": "x." + "a" * 17}, None),
        ("ContentVersion", {"FileExtension": "tar.gz"}, None),
        ("ContentVersion", {"FileExtension": "", "PathOnClient": "..\\..\\boot.ini"}, "ini"),
    ],
)
def test_extensions_are_the_real_ones_and_only_safe_ones(object_name: str, record: dict, ext: str | None) -> None:
    assert file_extension(object_name, record) == ext


def test_a_record_can_never_name_a_path_outside_files() -> None:
    evil = {"Id": "../../../etc/passwd", "Name": "x.txt", "BodyLength": "3"}
    assert tasks_for("Attachment", evil, ["Body"]) == []
    assert tasks_for("../Attachment", {"Id": "00P5g00000YedudEAB"}, ["Body"]) == []
    assert tasks_for("Attachment", {"Id": "00P5g00000YedudEAB"}, ["../Body"]) == []
    (task,) = tasks_for("Attachment", {"Id": "00P5g00000YedudEAB", "Name": "../../x.pdf"}, ["Body"])
    assert task.relative_path() == "files/Attachment/00P5g00000YedudEAB.pdf"
    assert task.relative_path(primary=False) == "files/Attachment/00P5g00000YedudEAB.Body.pdf"


def test_content_version_tasks_carry_size_checksum_document_and_version() -> None:
    (task,) = tasks_for("ContentVersion", CV, ["VersionData"])
    assert task.expected_size == 3139
    assert task.expected_md5 == "9e107d9d372bb6826bd81d3542a419d6"
    assert (task.document_id, task.version_number, task.is_latest) == ("0695g00000Z6dv9AAB", "3", True)
    assert task.parent_id == "0015g00000p8YRRAA2"
    (odd,) = tasks_for("ContentVersion", {**CV, "Checksum": "not-md5", "ContentSize": None}, ["VersionData"])
    assert odd.expected_md5 is None and odd.expected_size is None


def test_index_has_one_row_per_file_naming_every_linked_record(tmp_path: Path) -> None:
    (version,) = tasks_for("ContentVersion", CV, ["VersionData"])
    (attachment,) = tasks_for("Attachment", {"Id": "00P5g00000YedudEAB", "ParentId": "0065g00000ljAdZAAU"}, ["Body"])
    links = {"0695g00000Z6dv9AAB": ["0055g000007Dc6LAAS", "0015g00000p8YRRAA2", "5005g00000AbCdEAAZ"]}
    results = [
        FileResult(version, version.relative_path(), 3139, "ab" * 32),
        FileResult(attachment, attachment.relative_path(), 12, "cd" * 32),
    ]
    write_index(tmp_path / "index.csv", results, links)
    with open(tmp_path / "index.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["record_id"] for r in rows] == ["0685g00000H8JCwAAN", "00P5g00000YedudEAB"]
    assert rows[0]["linked_record_ids"] == "0015g00000p8YRRAA2;0055g000007Dc6LAAS;5005g00000AbCdEAAZ"
    assert (rows[0]["content_document_id"], rows[0]["version_number"], rows[0]["is_latest"]) == (
        "0695g00000Z6dv9AAB",
        "3",
        "true",
    )
    assert rows[1]["linked_record_ids"] == "0065g00000ljAdZAAU" and rows[1]["is_latest"] == ""
    assert linked_records(version, {}) == ["0015g00000p8YRRAA2"]  # no links exported: the first location
