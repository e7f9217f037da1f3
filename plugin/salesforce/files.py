"""File bodies (base64 fields): streamed to ``files/<Object>/<Id>.<ext>``, checked, indexed.

Each body goes to a ``.part`` file first, is checked against the size the record announced, and
only then renamed into place; ``files/index.csv`` links every body to its record and checksum.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import SalesforceDataError, SalesforceError, SalesforceNotFoundError
from plugin.salesforce.plan import SIZE_FIELDS

RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
EXTENSION = re.compile(r"^[A-Za-z0-9]{1,16}$")
# Which field links a file to the record it belongs to.
PARENT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ContentVersion": ("FirstPublishLocationId", "ContentDocumentId"),
    "Attachment": ("ParentId",),
    "Document": ("FolderId",),
}
NAME_FIELDS: Mapping[str, tuple[str, ...]] = {
    "ContentVersion": ("PathOnClient", "Title"),
    "Attachment": ("Name",),
    "Document": ("Name", "DeveloperName"),
}
INDEX_COLUMNS = ["object", "record_id", "field", "parent_id", "name", "path", "bytes", "sha256"]


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


def _suffix(name: Any) -> str | None:
    if not isinstance(name, str) or "." not in name:
        return None
    return name.rsplit(".", 1)[1]


def file_extension(object_name: str, record: Mapping[str, Any]) -> str | None:
    """The real extension of a body (never the FileType enum), if it is a safe one."""
    if object_name == "ContentVersion":
        ext = record.get("FileExtension") or _suffix(record.get("PathOnClient"))
    elif object_name == "Document":
        ext = record.get("Type") or _suffix(record.get("Name"))
    else:
        ext = _suffix(record.get("Name"))
    return ext if isinstance(ext, str) and EXTENSION.match(ext) else None


def tasks_for(object_name: str, record: Mapping[str, Any], blob_fields: Iterable[str]) -> list[FileTask]:
    """Download tasks for one record; records without an announced body get none."""
    rid = record.get("Id")
    if not isinstance(rid, str) or not RECORD_ID.match(rid):
        return []
    size_field = SIZE_FIELDS.get(object_name)
    size_value = record.get(size_field) if size_field else None
    expected = int(str(size_value)) if size_value is not None and str(size_value).isdigit() else None
    parent = next((record.get(f) for f in PARENT_FIELDS.get(object_name, ()) if record.get(f)), None)
    name = next((record.get(f) for f in NAME_FIELDS.get(object_name, ()) if record.get(f)), None)
    ext = file_extension(object_name, record)
    return [
        FileTask(object_name, rid, f, ext, expected, str(parent) if parent else None, str(name) if name else None)
        for f in blob_fields
    ]


class FileDownloader:
    """Downloads bodies with at most ``parallel`` requests in flight."""

    def __init__(self, client: OrgClient, root: Path, *, parallel: int) -> None:
        self.client = client
        self.root = root
        self.parallel = max(1, min(10, parallel))
        self._lock = threading.Lock()
        self._notes: list[FileNote] = []

    def _fetch(self, task: FileTask, part: Path) -> tuple[int, str]:
        url = f"/services/data/v{self.client.api_version}/sobjects/{task.object}/{task.record_id}/{task.field}"
        with open(part, "wb") as out:
            size, sha = self.client.download(url, out, object_name=task.object)
            out.flush()
            os.fsync(out.fileno())
        return size, sha

    def _one(self, task: FileTask, primary: bool) -> FileResult | FileNote:
        rel = task.relative_path(primary)
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        try:
            size, sha = self._fetch(task, part)
        except SalesforceNotFoundError:
            part.unlink(missing_ok=True)
            if task.deleted:
                return FileNote(task, "record is in the recycle bin and Salesforce no longer serves its body")
            if not task.expected_size:
                return FileNote(task, "no body (Salesforce has none for this record)")
            raise
        note = None
        if task.expected_size is not None and size != task.expected_size:
            # A short transfer is caught by the HTTP layer; a stable body whose size disagrees with the
            # record's size field is kept (the bytes are what the org holds) and reported.
            again, sha_again = self._fetch(task, part)
            if (again, sha_again) != (size, sha):
                part.unlink(missing_ok=True)
                raise SalesforceDataError(
                    f"{task.object} {task.record_id}: two downloads gave different bodies "
                    f"({size} and {again} bytes; the record says {task.expected_size})",
                    code="UNSTABLE_BODY",
                    retryable=True,
                    object_name=task.object,
                )
            note = FileNote(task, f"body has {size} bytes, the record says {task.expected_size}", downloaded=True)
        part.replace(final)
        result = FileResult(task, rel, size, sha)
        if note is not None:
            with self._lock:
                self._notes.append(note)
        return result

    def run(self, tasks: list[FileTask], *, on_done: Callable[[FileResult], None]) -> DownloadReport:
        """Download every task; a failure never stops the others."""
        report = DownloadReport([], [], [])
        self._notes = report.notes
        seen: set[tuple[str, str]] = set()
        jobs: list[tuple[FileTask, bool]] = []
        for task in tasks:
            key = (task.object, task.record_id)
            jobs.append((task, key not in seen))
            seen.add(key)
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="sfbackup-dl") as pool:
            futures = {pool.submit(self._one, t, primary): t for t, primary in jobs}
            try:
                for future in as_completed(futures):
                    task = futures[future]
                    try:
                        outcome = future.result()
                    except SalesforceError as e:
                        report.failures.append((task, e))
                        continue
                    if isinstance(outcome, FileNote):
                        report.notes.append(outcome)
                        continue
                    report.results.append(outcome)
                    on_done(outcome)
            except BaseException:
                # on_done stopped the run (a cancel): drop the queued downloads, wait only for those in flight.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        report.results.sort(key=lambda r: (r.task.object, r.task.record_id, r.task.field))
        report.notes.sort(key=lambda n: (n.task.object, n.task.record_id, n.task.field))
        return report


def write_index(path: Path, results: Iterable[FileResult]) -> None:
    """``files/index.csv``: one row per body, linking it to its record and checksum."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(INDEX_COLUMNS)
        for r in results:
            t = r.task
            writer.writerow([t.object, t.record_id, t.field, t.parent_id or "", t.name or "", r.path, r.size, r.sha256])
