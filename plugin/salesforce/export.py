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

from plugin.config import ExportSettings
from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.client import OrgClient, OrgIdentity
from plugin.salesforce.compression import compression_section
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.deleted import NOT_REPLICATEABLE, capture_deleted
from plugin.salesforce.describes import PlannedDescribes
from plugin.salesforce.download import FileDownloader
from plugin.salesforce.errors import ExportStoppedError, SalesforceAuthError, SalesforceError
from plugin.salesforce.files import (
    DownloadReport,
    FileResult,
    FileTask,
    tasks_for,
    write_index,
)
from plugin.salesforce.firstpages import MAX_QUERIES, FirstPages
from plugin.salesforce.links import LinkedExport, export_linked, links_of
from plugin.salesforce.links import manifest_entry as linked_entry
from plugin.salesforce.manifest import MANIFEST_NAME, partial_directory, write_manifest
from plugin.salesforce.plan import (
    FILE_OBJECTS,
    LINKED_OBJECTS,
    ObjectSelection,
    plan_fields,
    record_conditions,
    replicateable_objects,
    select_objects,
)
from plugin.salesforce.records_export import ObjectExporter, record_counts
from plugin.salesforce.resume import STATE_DIR, ResumePoint, drop_state, reusable_entry
from plugin.salesforce.window import Window, manifest_section

PROGRESS_INTERVAL = 1.0  # seconds between progress reports inside one object
LOOKAHEAD = 25  # objects after the current one looked at for first pages to fetch along (a describe batch)


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
    content_versions: str = "all"  # or "latest": ContentVersion rows (and bodies) with IsLatest only
    window_source: str = "none"  # since_date | last_backup | none (plugin/salesforce/window.py)
    overlap_seconds: int | None = None
    output_directory: str | None = None

    @property
    def window(self) -> Window:
        return Window(self.since, self.window_source, self.base_backup, self.overlap_seconds)

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
        clock: Callable[[], float] = time.monotonic,
        settings: ExportSettings | None = None,
        resume: ResumePoint | None = None,
        should_stop: Callable[[], bool] = _never,
    ) -> None:
        self.settings = settings or ExportSettings()
        self.resume = resume
        self.client = client
        self.identity = identity
        self.options = options
        self.final_dir = final_dir
        self.partial_dir = partial_directory(final_dir)
        self.on_plan = on_plan
        self.on_progress = on_progress
        self.log_head = log_head
        self.counts: dict[str, int] | None = None
        self._reused_objects: set[str] = set()  # objects a resume took from earlier attempts
        self._reusable: dict[str, dict[str, Any] | None] = {}  # what a resume may take, per object
        self.describes = PlannedDescribes(client, (), wanted=lambda name: True)  # run() plans the real one
        self.should_stop = should_stop  # asked on every progress report: per page, per file, per object
        self.records = 0
        self.files = 0
        self.bytes = 0
        self.linked: dict[str, LinkedExport] = {}
        self._available: set[str] = set()
        self.started_at = ""  # when run() began: the end of the incremental window
        self._clock = clock
        self._last_report: float | None = None
        self._order: list[str] = []
        self.ahead = BulkAhead(client, self._upcoming)
        self.first_pages = FirstPages(client, self._upcoming_small)

    # -- progress -------------------------------------------------------------------------------
    def _percent(self, done: int, total: int, files_done: int = 0, files_total: int = 0) -> int:
        objects_share = 85 if files_total else 97
        pct = objects_share * done / total if total else objects_share
        if files_total:
            pct += 12 * files_done / files_total
        return min(99, int(pct))

    def _due(self) -> bool:
        """Whether an unforced report may go out now: at most one per PROGRESS_INTERVAL.

        Every report becomes a ``job.progress`` event, so this is what bounds their number: two
        per object (started, finished), one for the manifest, and one per interval in between,
        however many records or files there are.
        """
        return self._last_report is None or self._clock() - self._last_report >= PROGRESS_INTERVAL

    def _report(self, progress: Progress, *, force: bool = False) -> None:
        if self.should_stop():
            raise ExportStoppedError("The export was asked to stop.", code="STOPPED")
        if force or self._due():
            self._last_report = self._clock()
            self.on_progress(progress)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> ExportResult:
        started = time.monotonic()
        started_at = self.started_at = utc_now()
        if self.final_dir.exists():
            raise ExportFailedError(
                f"The backup folder {self.final_dir} already exists; refusing to overwrite a backup.",
                code="TARGET_EXISTS",
            )
        if self.partial_dir.exists() and self.resume is None:
            shutil.rmtree(self.partial_dir)
        # A resumed export keeps the folder: finished objects are verified and reused.
        self.partial_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        (self.partial_dir / "data").mkdir(mode=0o700, exist_ok=True)
        (self.partial_dir / "describe").mkdir(mode=0o700, exist_ok=True)

        global_describe = self.client.describe_global()
        _write_bytes(self.partial_dir / "describe" / "_global.json", global_describe.raw)
        selection = select_objects(
            global_describe.data,
            backup_type=self.options.backup_type,
            objects_filter=self.options.objects_filter,
            include=self.options.include,
        )
        self.on_plan(selection)
        self._available = {
            str(e["name"]) for e in global_describe.data["sobjects"] if isinstance(e, dict) and e.get("queryable")
        }
        self.counts = record_counts(self.client, selection.objects)
        # Objects a resume reuses keep the describe their attempt saved: never described again.
        self.describes = PlannedDescribes(
            self.client, selection.objects, wanted=lambda n: n in LINKED_OBJECTS or self._reusable_entry(n) is None
        )
        setup_calls = self.client.api_calls

        total = len(selection.objects)
        entries: dict[str, dict[str, Any]] = {}
        for skip in selection.skipped:
            entries[skip.object] = {"status": "skipped", "reason": skip.reason, "records": 0}
        tasks: list[FileTask] = []
        self._order = list(selection.objects)
        try:
            self._export_objects(entries, tasks)
        finally:
            self.ahead.discard()  # a stop (cancel, limits, session) left a job created ahead: abort it
        refused = [n for n in selection.objects if entries[n]["status"] == "skipped"]
        failed = [n for n in selection.objects if entries[n]["status"] == "failed"]
        objects_calls = self.client.api_calls - setup_calls - self.describes.calls

        before_deleted = self.client.api_calls
        if self.options.since:
            self._capture_deleted(selection.objects, replicateable_objects(global_describe.data), entries)
        before_files = self.client.api_calls
        report = self._download(tasks, total)
        results, failures = report.results, report.failures
        errors = [
            {"object": n, "code": entries[n]["error"]["code"], "message": entries[n]["error"]["message"]}
            for n in failed
        ] + [
            {
                "object": t.object,
                "record_id": t.record_id,
                "field": t.field,
                "code": e.code,
                "message": str(e),
            }
            for t, e in failures
        ]
        auth = next((e for _, e in failures if isinstance(e, SalesforceAuthError)), None)
        if auth is not None:
            raise auth  # says how to get a session that lasts (or that the login was refused)
        if failures:
            shown = "; ".join(f"{e['object']} {e['record_id']}: {e['code']}: {e['message']}" for e in errors[:3])
            raise ExportFailedError(
                f"{len(failures)} of {len(tasks)} file bodies could not be downloaded ({shown}). "
                "None of them was kept as good. The partial backup was kept; start the backup again to retry.",
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
            "window": manifest_section(self.options.window, backup_type=self.options.backup_type, end=started_at),
            "options": {
                "backup_type": self.options.backup_type,
                "since_date": self.options.since if self.options.window_source == "since_date" else None,
                "objects_filter": list(self.options.objects_filter),
                **self.options.include,
                "content_versions": self.options.content_versions,
                "compression": "gzip" if self.options.compression else None,
                "parallel_downloads": self.options.parallel_downloads,
                "output_directory": self.options.output_directory,
            },
            "compression": compression_section(self.partial_dir, enabled=self.options.compression),
            "null_handling": "null and empty text are both written as an empty cell",
            "complete": not failed,
            "sizing": {
                "record_counts": "limits/recordCount" if self.counts is not None else "unavailable",
                "bulk_threshold": self.settings.bulk_threshold,
            },
            "objects": entries,
            "totals": {
                "objects": total - len(refused) - len(failed),
                "skipped": len(selection.skipped) + len(refused),
                "failed": len(failed),
                "records": self.records,
            },
            "files": {
                "count": len(results),
                "bytes": self.bytes,
                "index": "files/index.csv",
                "by_object": by_object,
                "checks": "size against ContentSize/BodyLength, MD5 against ContentVersion.Checksum; sha256 recorded",
                "retried": report.retried,
                "reused": report.reused,
                "linked_records": "files/index.csv linked_record_ids: ContentDocumentLink, ParentId or FolderId",
            },
            "errors": errors,
            "warnings": [
                {"object": n, "note": entries[n]["warning"]} for n in selection.objects if entries[n].get("warning")
            ]
            + [n.to_dict() for n in report.notes],
            "api_calls": self.client.api_calls,
            "api_calls_breakdown": {
                "setup": setup_calls,
                "describes": self.describes.calls,
                "objects": objects_calls,
                "deleted": before_files - before_deleted,
                "files": self.client.api_calls - before_files,
            },
            "event_log_head": {"position": position, "hash": head_hash},
        }
        manifest_sha = write_manifest(self.partial_dir / MANIFEST_NAME, manifest)
        if failed:
            # The manifest stays in the .partial folder: it says what is missing, and the folder
            # never passes for a backup. A resume exports the failed objects again.
            first = entries[failed[0]]["error"]
            raise ExportFailedError(
                f"{len(failed)} of {total} objects could not be exported (first: {failed[0]}: {first['message']}). "
                f"The backup is incomplete: {self.partial_dir / MANIFEST_NAME} lists the errors; "
                "resume the job to export them again.",
                code="OBJECTS_FAILED",
                retryable=True,
            )
        drop_state(self.partial_dir)
        _fsync_dir(self.partial_dir)
        os.rename(self.partial_dir, self.final_dir)
        _fsync_dir(self.final_dir.parent)
        return ExportResult(
            directory=self.final_dir,
            manifest_sha256=manifest_sha,
            objects=total - len(refused),
            records=self.records,
            files=len(results),
            bytes=self.bytes,
            skipped=len(selection.skipped) + len(refused),
            api_calls=self.client.api_calls,
            duration_seconds=duration,
            manifest=manifest,
        )

    def _export_objects(self, entries: dict[str, dict[str, Any]], tasks: list[FileTask]) -> None:
        """Every planned object in turn, into ``entries``; their file-body tasks into ``tasks``."""
        total = len(self._order)
        for done, name in enumerate(self._order):
            self._report(
                Progress("exporting", done, total, name, self.records, 0, 0, self._percent(done, total)),
                force=True,
            )
            object_tasks: list[FileTask] = []
            if name in LINKED_OBJECTS:
                entry = self._export_linked(name, done, total)
            else:
                entry, object_tasks = self._export_object(name, done, total)
                if record_conditions(name, content_versions=self.options.content_versions):
                    entry["content_versions"] = "latest: rows with IsLatest = true only"
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
                    object_finished={
                        "object": name,
                        "records": entry["records"],
                        "sha256": entry.get("sha256"),
                        "status": entry["status"],
                        "reason": entry.get("reason") or entry.get("warning"),
                        "method": entry.get("method"),
                    },
                ),
                force=True,
            )

    def _upcoming(self, name: str) -> tuple[str, str] | None:
        """The object after ``name`` and its Bulk query, when a job may be created for it ahead:
        it goes through Bulk, its describe is here already, a resume does not reuse it."""
        position = self._order.index(name) + 1 if name in self._order else len(self._order)
        if position >= len(self._order):
            return None
        following = self._order[position]
        if following in LINKED_OBJECTS or self._reusable_entry(following) is not None:
            return None
        describe = self.describes.peek(following)
        if describe is None:
            return None
        soql = self._object_exporter(following, 0, 0).bulk_query(describe.data)
        return None if soql is None else (following, soql)

    def _upcoming_small(self, name: str) -> list[tuple[str, str]]:
        """Objects after ``name`` whose first REST query may ride along in its composite request, with
        that query: among the next ``LOOKAHEAD`` (whose describes are here by then), not reused by a
        resume, not linked (ContentDocumentLink is read by Id filters), small (``rest_query``)."""
        position = self._order.index(name) + 1 if name in self._order else len(self._order)
        found: list[tuple[str, str]] = []
        for following in self._order[position : position + LOOKAHEAD]:
            if len(found) == MAX_QUERIES - 1:
                break
            if following in LINKED_OBJECTS or self._reusable_entry(following) is not None:
                continue
            describe = self.describes.peek(following)
            soql = None if describe is None else self._object_exporter(following, 0, 0).rest_query(describe.data)
            if soql is not None:
                found.append((following, soql))
        return found

    def _reusable_entry(self, name: str) -> dict[str, Any] | None:
        """(Resumes only.) The entry of an object an earlier attempt finished, when it may be reused."""
        if name not in self._reusable:
            finished = self.resume.finished.get(name) if self.resume else None
            self._reusable[name] = reusable_entry(self.partial_dir, name, finished)
        return self._reusable[name]

    def _export_object(self, name: str, done: int, total: int) -> tuple[dict[str, Any], list[FileTask]]:
        reused = self._reusable_entry(name)
        before = self.records
        exporter = self._object_exporter(name, done, total)
        entry = reused if reused is not None else exporter.export()
        if reused is not None:
            self._reused_objects.add(name)
        return self._finished_object(name, exporter, entry, before)

    def _object_exporter(self, name: str, done: int, total: int) -> ObjectExporter:
        before = self.records

        def on_rows(rows: int) -> None:
            self.records = before + rows
            self._report(Progress("exporting", done, total, name, self.records, 0, 0, self._percent(done, total)))

        return ObjectExporter(
            self.client,
            name,
            self.partial_dir,
            settings=self.settings,
            record_count=(self.counts or {}).get(name),
            compress=self.options.compression,
            since=self.options.since,  # set only when a window applies (window.py)
            on_rows=on_rows,
            describes=self.describes,
            conditions=record_conditions(name, content_versions=self.options.content_versions),
            ahead=self.ahead,
            first_pages=self.first_pages,
        )

    def _finished_object(
        self, name: str, exporter: ObjectExporter, entry: dict[str, Any], before: int
    ) -> tuple[dict[str, Any], list[FileTask]]:
        self.records = before + int(entry["records"])
        if entry["status"] != "exported":
            return entry, []
        plan = exporter.plan
        if plan.blob_fields:
            entry["file_fields"] = plan.blob_fields
            want = FILE_OBJECTS.get(name, "include_files") in {k for k, v in self.options.include.items() if v}
            entry["file_bodies"] = "downloaded" if want else "excluded by option"
            if want:
                return entry, exporter.file_tasks(entry, tasks_for)
        return entry, []

    def _may_reuse(self, task: FileTask) -> bool:
        """(Resumes only.) Whether a body an earlier attempt kept may stand for this task: its object's
        rows are the very ones the body was checked against (the object was reused), or the record's
        MD5 checksum (ContentVersion) pins the body whatever changed."""
        return task.object in self._reused_objects or task.expected_md5 is not None

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
            downloader = FileDownloader(
                self.client,
                self.partial_dir,
                parallel=self.options.parallel_downloads,
                reuse=self._may_reuse if self.resume is not None else None,
                journal=self.partial_dir / STATE_DIR / "files.jsonl",
            )

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
        write_index(self.partial_dir / "files" / "index.csv", report.results, links_of(self.linked))
        return report

    # -- files: linked objects and deletions (links.py, deleted.py) --------------------------------
    def _export_linked(self, name: str, done: int, total: int) -> dict[str, Any]:
        """A linked object (ContentDocumentLink): filtered queries per chunk of parent ids."""
        describe = self.describes.take(name)
        calls = self.client.api_calls
        _write_bytes(self.partial_dir / "describe" / f"{name}.json", describe.raw)
        plan = plan_fields(describe.data)
        sink = CsvSink(self.partial_dir / "data" / f"{name}.csv", plan.columns, compress=self.options.compression)

        def counted() -> None:
            self.records += 1
            self._report(Progress("exporting", done, total, name, self.records, 0, 0, self._percent(done, total)))

        try:
            result = export_linked(self.client, plan, sink, available=self._available, on_record=counted)
        except BaseException:
            sink.abort()
            raise
        sha = sink.close()
        self.linked[name] = result
        return {
            "status": "exported",
            "records": sink.rows,
            "deleted_records": result.deleted,
            "fields": len(plan.columns),
            "method": "rest",
            "query": "queryAll",
            "file": str(sink.path.relative_to(self.partial_dir)),
            "sha256": sha,
            "bytes": sink.path.stat().st_size,
            "compression": "gzip" if self.options.compression else None,
            "api_calls": self.client.api_calls - calls,
            **linked_entry(
                result, plan, objects_filter=self.options.objects_filter, windowed=self.options.since is not None
            ),
        }

    def _capture_deleted(self, names: list[str], replicateable: frozenset[str], entries: dict[str, Any]) -> None:
        """Incremental windows: each replicateable object's deletions from the delete log."""
        assert self.options.since is not None
        end = self.started_at
        for name in names:
            if name not in replicateable:
                entries[name]["deleted"] = {"status": "not captured", "reason": NOT_REPLICATEABLE}
                continue
            entry, _ = capture_deleted(
                self.client,
                name,
                since=self.options.since,
                end=end,
                data_dir=self.partial_dir / "data",
                compress=self.options.compression,
            )
            entries[name]["deleted"] = entry


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
