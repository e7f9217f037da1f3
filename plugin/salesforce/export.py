"""The export engine: describes, every record of every planned object, file bodies, manifest.

It writes into ``<final>.partial`` and renames the folder only when everything, manifest
included, is on disk, so a folder without ``.partial`` is always a complete backup.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plugin.salesforce.client import OrgClient, OrgIdentity
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceError
from plugin.salesforce.files import (
    DownloadReport,
    FileDownloader,
    FileResult,
    FileTask,
    tasks_for,
    write_index,
)
from plugin.salesforce.manifest import MANIFEST_NAME, write_manifest
from plugin.salesforce.plan import (
    FILE_OBJECTS,
    FieldPlan,
    ObjectSelection,
    build_soql,
    plan_fields,
    select_objects,
)

PROGRESS_INTERVAL = 1.0  # seconds between progress reports inside one object


@dataclass(frozen=True)
class ExportOptions:
    job_id: str
    backup_type: str = "full"
    since: str | None = None  # SOQL datetime literal (UTC, ...Z); None = everything
    base_backup: dict[str, Any] | None = None  # the backup an incremental one builds on
    objects_filter: tuple[str, ...] = ()
    include_files: bool = True
    include_attachments: bool = True
    include_documents: bool = True
    compression: bool = False
    parallel_downloads: int = 5

    @property
    def include(self) -> dict[str, bool]:
        return {
            "include_files": self.include_files,
            "include_attachments": self.include_attachments,
            "include_documents": self.include_documents,
        }


@dataclass
class Progress:
    phase: str
    objects_done: int
    objects_total: int
    current_object: str | None
    records: int
    files: int
    bytes: int
    percent: int
    object_finished: dict[str, Any] | None = None
    files_total: int | None = None  # known once the downloading phase starts


@dataclass
class ExportResult:
    directory: Path
    manifest_sha256: str
    objects: int
    records: int
    files: int
    bytes: int
    skipped: int
    api_calls: int
    duration_seconds: float
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)


class ExportFailedError(SalesforceError):
    """Files or objects could not be exported; the backup would be incomplete."""


class ExportStoppedError(SalesforceError):
    """The caller's ``should_stop`` said stop (a cancel, a lost lease); the partial folder stays as it is."""


def _never() -> bool:
    return False


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _write_bytes(path: Path, body: bytes) -> None:
    """Describes are saved exactly as Salesforce sent them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)


class Exporter:
    """Runs one backup. Callbacks report the plan and progress (the worker turns them into events)."""

    def __init__(
        self,
        client: OrgClient,
        identity: OrgIdentity,
        options: ExportOptions,
        final_dir: Path,
        *,
        on_plan: Callable[[ObjectSelection], None],
        on_progress: Callable[[Progress], None],
        log_head: Callable[[], tuple[int, str]],
        should_stop: Callable[[], bool] = _never,
    ) -> None:
        self.client = client
        self.identity = identity
        self.options = options
        self.final_dir = final_dir
        self.partial_dir = final_dir.with_name(final_dir.name + ".partial")
        self.on_plan = on_plan
        self.on_progress = on_progress
        self.log_head = log_head
        self.should_stop = should_stop  # asked on every progress report: per record, per file, per object
        self.records = 0
        self.files = 0
        self.bytes = 0
        self._last_report = 0.0

    # -- progress -------------------------------------------------------------------------------
    def _percent(self, done: int, total: int, files_done: int = 0, files_total: int = 0) -> int:
        objects_share = 85 if files_total else 97
        pct = objects_share * done / total if total else objects_share
        if files_total:
            pct += 12 * files_done / files_total
        return min(99, int(pct))

    def _report(self, progress: Progress, *, force: bool = False) -> None:
        if self.should_stop():
            raise ExportStoppedError("The export was asked to stop.", code="STOPPED")
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self.on_progress(progress)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> ExportResult:
        started = time.monotonic()
        started_at = utc_now()
        if self.final_dir.exists():
            raise ExportFailedError(
                f"The backup folder {self.final_dir} already exists; refusing to overwrite a backup.",
                code="TARGET_EXISTS",
            )
        if self.partial_dir.exists():
            shutil.rmtree(self.partial_dir)
        self.partial_dir.mkdir(parents=True, mode=0o700)
        (self.partial_dir / "data").mkdir(mode=0o700)
        (self.partial_dir / "describe").mkdir(mode=0o700)

        global_describe = self.client.describe_global()
        _write_bytes(self.partial_dir / "describe" / "_global.json", global_describe.raw)
        selection = select_objects(
            global_describe.data,
            backup_type=self.options.backup_type,
            objects_filter=self.options.objects_filter,
            include=self.options.include,
        )
        self.on_plan(selection)

        total = len(selection.objects)
        entries: dict[str, dict[str, Any]] = {}
        for skip in selection.skipped:
            entries[skip.object] = {"status": "skipped", "reason": skip.reason, "records": 0}
        tasks: list[FileTask] = []
        for done, name in enumerate(selection.objects):
            self._report(
                Progress("exporting", done, total, name, self.records, 0, 0, self._percent(done, total)),
                force=True,
            )
            entry, object_tasks = self._export_object(name, done, total)
            entries[name] = entry
            tasks.extend(object_tasks)
            self._report(
                Progress(
                    "exporting",
                    done + 1,
                    total,
                    None,
                    self.records,
                    0,
                    0,
                    self._percent(done + 1, total, 0, len(tasks)),
                    object_finished={"object": name, "records": entry["records"], "sha256": entry["sha256"]},
                ),
                force=True,
            )

        report = self._download(tasks, total)
        results, failures = report.results, report.failures
        errors = [
            {
                "object": t.object,
                "record_id": t.record_id,
                "field": t.field,
                "code": e.code,
                "message": str(e),
            }
            for t, e in failures
        ]
        if failures:
            first = failures[0][1]
            raise ExportFailedError(
                f"{len(failures)} of {len(tasks)} file bodies could not be downloaded "
                f"(first: {errors[0]['object']} {errors[0]['record_id']}: {first}). "
                "The partial backup was kept; start the backup again to retry.",
                code="FILES_FAILED",
                retryable=True,
            )

        self._report(
            Progress(
                "writing_manifest", total, total, None, self.records, self.files, self.bytes, 99, files_total=len(tasks)
            ),
            force=True,
        )
        by_object: dict[str, dict[str, int]] = {}
        for r in results:
            agg = by_object.setdefault(r.task.object, {"count": 0, "bytes": 0})
            agg["count"] += 1
            agg["bytes"] += r.size
        duration = time.monotonic() - started
        position, head_hash = self.log_head()
        manifest = {
            "format": "sfbackup-manifest",
            "format_version": 1,
            "job_id": self.options.job_id,
            "org_id": self.identity.org_id,
            "org_name": self.identity.name,
            "instance_url": self.identity.instance_url,
            "api_version": self.client.api_version,
            "backup_type": self.options.backup_type,
            "since": self.options.since,
            "base_backup": self.options.base_backup,
            "started_at": started_at,
            "finished_at": utc_now(),
            "duration_seconds": round(duration, 3),
            "options": {
                "objects_filter": list(self.options.objects_filter),
                **self.options.include,
                "compression": "gzip" if self.options.compression else None,
                "parallel_downloads": self.options.parallel_downloads,
            },
            "null_handling": "null and empty text are both written as an empty cell",
            "objects": entries,
            "totals": {
                "objects": total,
                "skipped": len(selection.skipped),
                "records": self.records,
            },
            "files": {
                "count": len(results),
                "bytes": self.bytes,
                "index": "files/index.csv",
                "by_object": by_object,
            },
            "errors": errors,
            "warnings": [n.to_dict() for n in report.notes],
            "api_calls": self.client.api_calls,
            "event_log_head": {"position": position, "hash": head_hash},
        }
        manifest_sha = write_manifest(self.partial_dir / MANIFEST_NAME, manifest)
        _fsync_dir(self.partial_dir)
        os.rename(self.partial_dir, self.final_dir)
        _fsync_dir(self.final_dir.parent)
        return ExportResult(
            directory=self.final_dir,
            manifest_sha256=manifest_sha,
            objects=total,
            records=self.records,
            files=len(results),
            bytes=self.bytes,
            skipped=len(selection.skipped),
            api_calls=self.client.api_calls,
            duration_seconds=duration,
            manifest=manifest,
        )

    def _export_object(self, name: str, done: int, total: int) -> tuple[dict[str, Any], list[FileTask]]:
        describe = self.client.describe(name)
        _write_bytes(self.partial_dir / "describe" / f"{name}.json", describe.raw)
        plan: FieldPlan = plan_fields(describe.data)
        since = self.options.since if self.options.backup_type == "incremental" else None
        soql = build_soql(plan, since=since)
        want_bodies = bool(plan.blob_fields) and FILE_OBJECTS.get(name, "include_files") in {
            k for k, v in self.options.include.items() if v
        }
        sink = CsvSink(self.partial_dir / "data" / f"{name}.csv", plan.columns, compress=self.options.compression)
        tasks: list[FileTask] = []
        deleted = 0
        try:
            # queryAll: recycle-bin rows (IsDeleted = true) are part of the org's data and restorable.
            for record in self.client.query(soql, object_name=name, include_deleted=True):
                sink.write(record)
                self.records += 1
                if record.get("IsDeleted") is True:
                    deleted += 1
                if want_bodies:
                    tasks.extend(tasks_for(name, record, plan.blob_fields))
                self._report(Progress("exporting", done, total, name, self.records, 0, 0, self._percent(done, total)))
        except BaseException:
            sink.abort()
            raise
        sha = sink.close()
        entry: dict[str, Any] = {
            "status": "exported",
            "records": sink.rows,
            "deleted_records": deleted,
            "fields": len(plan.columns),
            "method": "rest",
            "query": "queryAll",
            "file": str(sink.path.relative_to(self.partial_dir)),
            "sha256": sha,
            "bytes": sink.path.stat().st_size,
            "compression": "gzip" if self.options.compression else None,
        }
        if plan.compound_omitted:
            entry["compound_fields_omitted"] = plan.compound_omitted
        if plan.blob_fields:
            entry["file_fields"] = plan.blob_fields
            entry["file_bodies"] = "downloaded" if want_bodies else "excluded by option"
        if since:
            entry["window"] = (
                {"field": plan.change_field, "after": since}
                if plan.change_field
                else {"note": "no change-tracking field: exported in full"}
            )
        return entry, tasks

    def _download(self, tasks: list[FileTask], total: int) -> DownloadReport:
        report = DownloadReport([], [], [])
        if tasks:
            # Announce the total before the first body arrives: the status shows "0/N files" at once.
            self._report(
                Progress(
                    "downloading_files",
                    total,
                    total,
                    None,
                    self.records,
                    0,
                    0,
                    self._percent(total, total, 0, len(tasks)),
                    files_total=len(tasks),
                ),
                force=True,
            )
            downloader = FileDownloader(self.client, self.partial_dir, parallel=self.options.parallel_downloads)

            def done(result: FileResult) -> None:
                self.files += 1
                self.bytes += result.size
                self._report(
                    Progress(
                        "downloading_files",
                        total,
                        total,
                        result.task.object,
                        self.records,
                        self.files,
                        self.bytes,
                        self._percent(total, total, self.files, len(tasks)),
                        files_total=len(tasks),
                    )
                )

            report = downloader.run(tasks, on_done=done)
        write_index(self.partial_dir / "files" / "index.csv", report.results)
        return report


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
