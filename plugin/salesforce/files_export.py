"""The file bodies of a backup: downloaded after the records, then ``files/index.csv``.

The records stage collects a task per body its rows point at; this stage downloads them
(``download.py``), reports each one as it arrives, writes the index that links every body to its
records, and fails the backup when a body could not be had: a backup never passes with a body
missing. On a resume a body an earlier attempt kept may stand for its task (``may_reuse``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from plugin.salesforce.client import OrgClient
from plugin.salesforce.download import FileDownloader
from plugin.salesforce.errors import ExportFailedError, SalesforceAuthError, SalesforceError
from plugin.salesforce.files import DownloadReport, FileTask, write_index
from plugin.salesforce.links import LinkedExport, links_of
from plugin.salesforce.progress import ProgressReporter
from plugin.salesforce.resume import STATE_DIR


def may_reuse(reused_objects: set[str]) -> Callable[[FileTask], bool]:
    """(Resumes only.) The test whether a body an earlier attempt kept may stand for a task: its
    object's rows are the very ones the body was checked against (the object was reused), or the
    record's MD5 checksum (ContentVersion) pins the body whatever changed."""
    return lambda task: task.object in reused_objects or task.expected_md5 is not None


def download_bodies(
    client: OrgClient,
    partial_dir: Path,
    tasks: list[FileTask],
    *,
    objects_total: int,
    parallel: int,
    reuse: Callable[[FileTask], bool] | None,
    progress: ProgressReporter,
    linked: Mapping[str, LinkedExport],
) -> DownloadReport:
    """Every body of ``tasks`` into ``files/``, and the index of those kept (written even when none)."""
    report = DownloadReport([], [], [])
    if tasks:
        # Announce the total before the first body arrives: the status shows "0/N files" at once.
        progress.downloading(objects_total, len(tasks), force=True)
        downloader = FileDownloader(
            client,
            partial_dir,
            parallel=parallel,
            reuse=reuse,
            journal=partial_dir / STATE_DIR / "files.jsonl",
        )
        report = downloader.run(tasks, on_done=lambda r: progress.file_done(r, objects_total, len(tasks)))
    write_index(partial_dir / "files" / "index.csv", report.results, links_of(linked))
    return report


def body_errors(failures: list[tuple[FileTask, SalesforceError]]) -> list[dict[str, Any]]:
    """The manifest's ``errors`` for the bodies that failed."""
    return [
        {
            "object": t.object,
            "record_id": t.record_id,
            "field": t.field,
            "code": e.code,
            "message": str(e),
        }
        for t, e in failures
    ]


def refuse_failed_bodies(report: DownloadReport, tasks: int) -> None:
    """Stop the backup when a body failed; the message shows the first three that did.

    Raises:
        SalesforceAuthError: a body failed for the session; it says how to get one that lasts.
        ExportFailedError: code ``FILES_FAILED``, retryable.
    """
    failures = report.failures
    auth = next((e for _, e in failures if isinstance(e, SalesforceAuthError)), None)
    if auth is not None:
        raise auth  # says how to get a session that lasts (or that the login was refused)
    if failures:
        shown = "; ".join(
            f"{e['object']} {e['record_id']}: {e['code']}: {e['message']}" for e in body_errors(failures[:3])
        )
        raise ExportFailedError(
            f"{len(failures)} of {tasks} file bodies could not be downloaded ({shown}). "
            "None of them was kept as good. The partial backup was kept; start the backup again to retry.",
            code="FILES_FAILED",
            retryable=True,
        )


def files_section(report: DownloadReport, total_bytes: int) -> dict[str, Any]:
    """The manifest's ``files``: the bodies kept, per object, and how they were checked."""
    by_object: dict[str, dict[str, int]] = {}
    for r in report.results:
        agg = by_object.setdefault(r.task.object, {"count": 0, "bytes": 0})
        agg["count"] += 1
        agg["bytes"] += r.size
    return {
        "count": len(report.results),
        "bytes": total_bytes,
        "index": "files/index.csv",
        "by_object": by_object,
        "checks": "size against ContentSize/BodyLength, MD5 against ContentVersion.Checksum; sha256 recorded",
        "retried": report.retried,
        "reused": report.reused,
        "linked_records": "files/index.csv linked_record_ids: ContentDocumentLink, ParentId or FolderId",
    }
