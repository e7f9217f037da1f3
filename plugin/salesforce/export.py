"""The export engine: describes, every record of every planned object, file bodies, manifest.

It writes into ``<final>.partial`` and renames the folder only when everything, manifest
included, is on disk, so a folder without ``.partial`` is always a complete backup. ``Exporter``
runs the stages in order and writes the manifest; each stage lives in its own module: the plan
(``plan.py``), the planned objects in turn (``planned_objects.py``), the window's deletions
(``deleted.py``), the file bodies (``files_export.py``), and the progress they report
(``progress.py``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plugin.config import ExportSettings
from plugin.salesforce.client import OrgClient
from plugin.salesforce.compression import compression_section
from plugin.salesforce.deleted import capture_window
from plugin.salesforce.describes import save_describe
from plugin.salesforce.errors import ExportFailedError
from plugin.salesforce.files import DownloadReport, FileTask
from plugin.salesforce.files_export import (
    body_errors,
    download_bodies,
    files_section,
    may_reuse,
    refuse_failed_bodies,
)
from plugin.salesforce.identity import OrgIdentity
from plugin.salesforce.manifest import MANIFEST_NAME, partial_directory, publish, write_manifest
from plugin.salesforce.options import ExportOptions, options_section
from plugin.salesforce.plan import (
    ObjectSelection,
    replicateable_objects,
    select_objects,
)
from plugin.salesforce.planned_objects import PlannedObjects
from plugin.salesforce.progress import Progress, ProgressReporter
from plugin.salesforce.records_export import record_counts
from plugin.salesforce.resume import ResumePoint, drop_state
from plugin.salesforce.window import manifest_section


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


def _never() -> bool:
    return False


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


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
        self.progress = ProgressReporter(on_progress, should_stop=should_stop, clock=clock)
        self.log_head = log_head
        self.objects = PlannedObjects(
            client, self.partial_dir, options, settings=self.settings, progress=self.progress, resume=resume
        )
        self.ahead = self.objects.ahead  # the Bulk job created ahead for the next object
        self.started_at = ""  # when run() began: the end of the incremental window

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> ExportResult:
        started = time.monotonic()
        started_at = self.started_at = utc_now()
        self._prepare_folder()

        global_describe = self.client.describe_global()
        save_describe(self.partial_dir / "describe" / "_global.json", global_describe)
        selection = select_objects(
            global_describe.data,
            backup_type=self.options.backup_type,
            objects_filter=self.options.objects_filter,
            include=self.options.include,
        )
        self.on_plan(selection)
        available = {
            str(e["name"]) for e in global_describe.data["sobjects"] if isinstance(e, dict) and e.get("queryable")
        }
        counts = record_counts(self.client, selection.objects)
        self.objects.plan(selection.objects, counts=counts, available=available)
        setup_calls = self.client.api_calls

        total = len(selection.objects)
        entries: dict[str, dict[str, Any]] = {}
        for skip in selection.skipped:
            entries[skip.object] = {"status": "skipped", "reason": skip.reason, "records": 0}
        tasks: list[FileTask] = []
        try:
            self.objects.export(entries, tasks)
        finally:
            self.ahead.discard()  # a stop (cancel, limits, session) left a job created ahead: abort it
        refused = [n for n in selection.objects if entries[n]["status"] == "skipped"]
        failed = [n for n in selection.objects if entries[n]["status"] == "failed"]
        objects_calls = self.client.api_calls - setup_calls - self.objects.describes.calls

        before_deleted = self.client.api_calls
        if self.options.since:
            self._capture_deleted(selection.objects, replicateable_objects(global_describe.data), entries)
        before_files = self.client.api_calls
        report = self._download(tasks, total)
        errors = [
            {"object": n, "code": entries[n]["error"]["code"], "message": entries[n]["error"]["message"]}
            for n in failed
        ] + body_errors(report.failures)
        refuse_failed_bodies(report, len(tasks))

        self.progress.writing_manifest(total, len(tasks))
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
            "options": options_section(self.options),
            "compression": compression_section(self.partial_dir, enabled=self.options.compression),
            "null_handling": "null and empty text are both written as an empty cell",
            "complete": not failed,
            "sizing": {
                "record_counts": "limits/recordCount" if counts is not None else "unavailable",
                "bulk_threshold": self.settings.bulk_threshold,
            },
            "objects": entries,
            "totals": {
                "objects": total - len(refused) - len(failed),
                "skipped": len(selection.skipped) + len(refused),
                "failed": len(failed),
                "records": self.progress.records,
            },
            "files": files_section(report, self.progress.bytes),
            "errors": errors,
            "warnings": [
                {"object": n, "note": entries[n]["warning"]} for n in selection.objects if entries[n].get("warning")
            ]
            + [n.to_dict() for n in report.notes],
            "api_calls": self.client.api_calls,
            "api_calls_breakdown": {
                "setup": setup_calls,
                "describes": self.objects.describes.calls,
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
        publish(self.partial_dir, self.final_dir)
        return ExportResult(
            directory=self.final_dir,
            manifest_sha256=manifest_sha,
            objects=total - len(refused),
            records=self.progress.records,
            files=len(report.results),
            bytes=self.progress.bytes,
            skipped=len(selection.skipped) + len(refused),
            api_calls=self.client.api_calls,
            duration_seconds=duration,
            manifest=manifest,
        )

    def _prepare_folder(self) -> None:
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

    # -- the stages after the records: deletions, file bodies ---------------------------------
    def _capture_deleted(self, names: list[str], replicateable: frozenset[str], entries: dict[str, Any]) -> None:
        """Incremental windows: each replicateable object's deletions from the delete log."""
        assert self.options.since is not None
        found = capture_window(
            self.client,
            names,
            replicateable,
            since=self.options.since,
            end=self.started_at,
            data_dir=self.partial_dir / "data",
            compress=self.options.compression,
        )
        for name, deleted in found.items():
            entries[name]["deleted"] = deleted

    def _download(self, tasks: list[FileTask], total: int) -> DownloadReport:
        return download_bodies(
            self.client,
            self.partial_dir,
            tasks,
            objects_total=total,
            parallel=self.options.parallel_downloads,
            reuse=may_reuse(self.objects.reused) if self.resume is not None else None,
            progress=self.progress,
            linked=self.objects.linked,
        )
