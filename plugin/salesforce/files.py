"""File bodies (base64 fields): what to download, where it goes, and ``files/index.csv``.

A body goes to ``files/<Object>/<Id>.<ext>``: the object and field names come from the describe,
the Id is checked against the Salesforce Id shape and the extension against a short alphanumeric
pattern, so no value of a record (a file name, a Type) can ever lead a write outside ``files/``.
The downloading itself (retries, checks, re-login) lives in ``download.py``.

``files/index.csv`` has one row per body and names every record the file belongs to in
``linked_record_ids`` (``;``-separated): a restore uploads each file once, then links it to each
of those records (for ContentVersion: ContentDocumentLink, whose ShareType and Visibility are in
``data/ContentDocumentLink.csv``; for Attachment: ParentId; for Document: FolderId).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin.salesforce.errors import SalesforceError
from plugin.salesforce.plan import OBJECT_NAME, SIZE_FIELDS

RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
EXTENSION = re.compile(r"^[A-Za-z0-9]{1,16}$")
MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
# Which field links a file to the record it belongs to.
PARENT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ContentVersion": ("FirstPublishLocationId",),
    "Attachment": ("ParentId",),
    "Document": ("FolderId",),
}
NAME_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ContentVersion": ("PathOnClient", "Title"),
    "Attachment": ("Name",),
    "Document": ("Name", "DeveloperName"),
}
# Salesforce's own checksum of a body, where the object has one (ContentVersion.Checksum is MD5).
CHECKSUM_FIELDS: Mapping[str, str] = {"ContentVersion": "Checksum"}
INDEX_COLUMNS = [
    "object",
    "record_id",
    "field",
    "parent_id",
    "content_document_id",
    "version_number",
    "is_latest",
    "linked_record_ids",
    "name",
    "path",
    "bytes",
    "sha256",
]


@dataclass(frozen=True)
class FileTask:
    object: str
    record_id: str
    field: str
    extension: str | None
    expected_size: int | None
    parent_id: str | None
    name: str | None
    deleted: bool = False  # the record is in the recycle bin
    expected_md5: str | None = None
    document_id: str | None = None  # ContentVersion: the ContentDocument the version belongs to
    version_number: str | None = None
    is_latest: bool | None = None

    def relative_path(self, primary: bool = True) -> str:
        stem = self.record_id if primary else f"{self.record_id}.{self.field}"
        suffix = f".{self.extension}" if self.extension else ""
        return f"files/{self.object}/{stem}{suffix}"


@dataclass(frozen=True)
class FileResult:
    task: FileTask
    path: str
    size: int
    sha256: str
    attempts: int = 1
    reused: bool = False  # left under its final name by an earlier attempt of the job, checked again


@dataclass(frozen=True)
class FileNote:
    """A body that was not downloaded, or was accepted with a remark, and why (goes into the manifest)."""

    task: FileTask
    note: str
    downloaded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.task.object,
            "record_id": self.task.record_id,
            "field": self.task.field,
            "note": self.note,
            "downloaded": self.downloaded,
        }


@dataclass
class DownloadReport:
    results: list[FileResult]
    failures: list[tuple[FileTask, SalesforceError]]
    notes: list[FileNote]

    @property
    def retried(self) -> int:
        """Bodies that needed more than one attempt (dropped connections, wrong sizes)."""
        return sum(1 for r in self.results if r.attempts > 1)

    @property
    def reused(self) -> int:
        """Bodies a resumed job kept from an earlier attempt instead of downloading them again."""
        return sum(1 for r in self.results if r.reused)


def _suffix(name: Any) -> str | None:
    if not isinstance(name, str) or "." not in name:
        return None
    return name.rsplit(".", 1)[1]


def file_extension(object_name: str, record: Mapping[str, Any]) -> str | None:
    """The real extension of a body (never the FileType enum), lower-cased, if it is a safe one.

    ContentVersion: FileExtension (else the client path's); Document: Type, which holds the
    extension (else the name's); Attachment: the name's. Anything but 1-16 letters and digits
    (``..``, a slash, a long string) gives no extension at all.
    """
    if object_name == "ContentVersion":
        ext = record.get("FileExtension") or _suffix(record.get("PathOnClient"))
    elif object_name == "Document":
        ext = record.get("Type") or _suffix(record.get("Name"))
    else:
        ext = _suffix(record.get("Name"))
    return ext.lower() if isinstance(ext, str) and EXTENSION.match(ext) else None


def _size(value: Any) -> int | None:
    return int(str(value)) if value is not None and str(value).isdigit() else None


def tasks_for(object_name: str, record: Mapping[str, Any], blob_fields: Iterable[str]) -> list[FileTask]:
    """Download tasks for one record; records without a usable Id (or odd names) get none."""
    rid = record.get("Id")
    if not isinstance(rid, str) or not RECORD_ID.match(rid) or not OBJECT_NAME.match(object_name):
        return []
    size_field = SIZE_FIELDS.get(object_name)
    expected = _size(record.get(size_field)) if size_field else None
    parent = next((record.get(f) for f in PARENT_FIELDS.get(object_name, ()) if record.get(f)), None)
    name = next((record.get(f) for f in NAME_FIELDS.get(object_name, ()) if record.get(f)), None)
    checksum = record.get(CHECKSUM_FIELDS.get(object_name, ""))
    latest = record.get("IsLatest") if object_name == "ContentVersion" else None
    document = record.get("ContentDocumentId") if object_name == "ContentVersion" else None
    version = record.get("VersionNumber") if object_name == "ContentVersion" else None
    return [
        FileTask(
            object_name,
            rid,
            f,
            file_extension(object_name, record),
            expected,
            str(parent) if parent else None,
            str(name) if name else None,
            deleted=record.get("IsDeleted") is True,
            expected_md5=checksum.lower() if isinstance(checksum, str) and MD5_HEX.match(checksum) else None,
            document_id=str(document) if document else None,
            version_number=str(version) if version is not None else None,
            is_latest=latest if isinstance(latest, bool) else None,
        )
        for f in blob_fields
        if OBJECT_NAME.match(f)
    ]


def linked_records(task: FileTask, links: Mapping[str, Sequence[str]]) -> list[str]:
    """Every record a file belongs to: its ContentDocumentLinks, else its parent."""
    if task.document_id is not None and task.document_id in links:
        return sorted(set(links[task.document_id]))
    return [task.parent_id] if task.parent_id else []


def write_index(path: Path, results: Iterable[FileResult], links: Mapping[str, Sequence[str]] | None = None) -> None:
    """``files/index.csv``: one row per body, linking it to its records and checksum."""
    links = links or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(INDEX_COLUMNS)
        for r in results:
            t = r.task
            writer.writerow(
                [
                    t.object,
                    t.record_id,
                    t.field,
                    t.parent_id or "",
                    t.document_id or "",
                    t.version_number or "",
                    "" if t.is_latest is None else ("true" if t.is_latest else "false"),
                    ";".join(linked_records(t, links)),
                    t.name or "",
                    r.path,
                    r.size,
                    r.sha256,
                ]
            )
