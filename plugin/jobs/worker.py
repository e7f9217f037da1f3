"""The worker process of one job: connects, exports, and records every step as an event.

Run as ``python -m plugin.jobs.worker --home HOME JOB_ID`` by the runtime. It is the only writer of
its job's stream after ``job.requested``, and checks the stream version on every append.
``--resume`` starts attempt n+1 of a job whose last attempt failed retryably or was interrupted:
it appends a new ``job.started`` and continues in the same ``.partial`` folder, exporting only the
objects no earlier attempt finished (``plugin.salesforce.resume``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from events import EventLog, EventLogError
from events.codec import decode, encode
from events.ids import job_stream
from events.vocabulary import (
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
    ObjectFinished,
    SkippedObject,
)
from plugin import config
from plugin.errors import PluginError
from plugin.jobs.options import recheck_backup_directory
from plugin.log_setup import configure_logging
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import SalesforceError
from plugin.salesforce.export import Exporter, ExportOptions, Progress
from plugin.salesforce.manifest import read_manifest
from plugin.salesforce.plan import ObjectSelection, UnknownObjectsError
from plugin.salesforce.resume import ResumePoint, resume_point
from plugin.salesforce.window import Window, base_end, choose_window, uncovered
from projections import ProjectionStore

log = structlog.get_logger("sfbackup.worker")
TERMINAL = {"job.completed", "job.failed", "job.cancelled", "job.interrupted"}
BASE_CANDIDATES = 100  # completed backups looked at for the base of an incremental one


class JobWorker:
    def __init__(self, home: Path, job_id: str, *, resume: bool = False) -> None:
        self.home = home
        self.resume = resume
        self.resume_point: ResumePoint | None = None
        self.job_id = job_id
        self.stream = job_stream(job_id)
        self.log = EventLog.open(config.events_path(home))
        self.version = 0
        self.attempt = 1
        self.phase = "planning"
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        # Every event the worker records was caused by the job's request and belongs to the same
        # MCP request, so an audit by correlation id shows all of it.
        self.causation_id: str | None = None
        self.correlation_id: str | None = None

    def _append(self, payload: Any) -> None:
        metadata = {
            "actor": "worker",
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "attempt": self.attempt,
        }
        event = encode(payload, metadata=metadata, correlation_id=self.correlation_id, causation_id=self.causation_id)
        self.log.append(self.stream, [event], expected_version=self.version)
        self.version += 1

    def run(self) -> int:
        events = self.log.read_stream(self.stream)
        if not events:
            log.error("no such job", job_id=self.job_id)
            return 2
        if self.resume:
            refusal = resumable(events)
            if refusal:
                log.error("cannot resume", job_id=self.job_id, reason=refusal)
                return 2
            self.resume_point = resume_point(decode(e) for e in events)
            self.attempt = self.resume_point.attempt
        elif any(e.type in TERMINAL or e.type == "job.started" for e in events):
            log.warning("job already started or finished; nothing to do", job_id=self.job_id)
            return 0
        self.version = events[-1].stream_version
        self.causation_id = events[0].event_id
        self.correlation_id = events[0].correlation_id
        request = decode(events[0])
        assert isinstance(request, JobRequested)
        try:
            return self._run(request)
        except (PluginError, UnknownObjectsError) as e:
            code = getattr(e, "code", "INVALID_OBJECTS_FILTER" if isinstance(e, UnknownObjectsError) else "ERROR")
            retryable = bool(getattr(e, "retryable", False))
            log.error("job failed", job_id=self.job_id, code=code, error=str(e))
            self._append(
                JobFailed(error_code=code, message=str(e), retryable=retryable, attempt=self.attempt, phase=self.phase)
            )
            return 1
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            message = f"Internal error {type(e).__name__}: {e}. See {self.home / 'logs' / (self.job_id + '.log')}."
            failed = JobFailed("INTERNAL_ERROR", message, retryable=False, attempt=self.attempt, phase=self.phase)
            self._append(failed)
            return 1

    def _run(self, request: JobRequested) -> int:
        env = os.environ
        credentials = config.credentials_from_env(env)
        api_version = request.api_version or config.api_version(env)
        settings = config.export_settings(env)
        self.phase = "connecting"
        client = OrgClient(
            credentials, api_version=api_version, extra_ca=config.ca_bundle(env), api_reserve=settings.api_reserve
        )
        try:
            identity = client.identity()
            if request.org_id and identity.org_id != request.org_id:
                raise SalesforceError(
                    f"The credentials now reach org {identity.org_id}, but the job was requested for "
                    f"{request.org_id}. Start a new backup.",
                    code="ORG_CHANGED",
                )
            window = self._window(request, identity.org_id)
            if not request.backup_directory:
                raise SalesforceError("The job request names no backup folder.", code="NO_TARGET")
            final = recheck_backup_directory(request.backup_directory)
            options = ExportOptions(
                job_id=self.job_id,
                backup_type=request.backup_type,
                since=window.since,
                base_backup=window.base_backup,
                window_source=window.source,
                overlap_seconds=window.overlap_seconds,
                content_versions=request.content_versions,
                output_directory=request.output_directory,
                objects_filter=request.objects_filter,
                include_files=request.include_files,
                include_attachments=request.include_attachments,
                include_documents=request.include_documents,
                compression=request.compression,
                parallel_downloads=request.parallel_downloads,
            )

            def on_plan(selection: ObjectSelection) -> None:
                self.phase = "exporting"
                self._append(
                    JobStarted(
                        attempt=self.attempt,
                        worker_id=self.worker_id,
                        pid=os.getpid(),
                        org_id=identity.org_id,
                        instance_url=identity.instance_url,
                        api_version=api_version,
                        objects_total=len(selection.objects),
                        objects=tuple(selection.objects),
                        skipped=tuple(SkippedObject(s.object, s.reason) for s in selection.skipped),
                        partial_directory=str(final.with_name(final.name + ".partial")),
                    )
                )

            def on_progress(p: Progress) -> None:
                self.phase = p.phase
                finished = ObjectFinished(**p.object_finished) if p.object_finished else None
                self._append(
                    JobProgress(
                        phase=p.phase,
                        objects_done=p.objects_done,
                        objects_total=p.objects_total,
                        current_object=p.current_object,
                        records=p.records,
                        files=p.files,
                        files_total=p.files_total,
                        bytes=p.bytes,
                        percent=p.percent,
                        object_finished=finished,
                    )
                )

            exporter = Exporter(
                client,
                identity,
                options,
                final,
                on_plan=on_plan,
                on_progress=on_progress,
                log_head=self.log.head,
                settings=settings,
                resume=self.resume_point,
            )
            result = exporter.run()
        finally:
            client.close()
        self._append(
            JobCompleted(
                backup_directory=str(result.directory),
                manifest_sha256=result.manifest_sha256,
                objects=result.objects,
                records=result.records,
                files=result.files,
                bytes=result.bytes,
                skipped=result.skipped,
                duration_seconds=round(result.duration_seconds, 3),
            )
        )
        log.info("job completed", job_id=self.job_id, records=result.records, files=result.files)
        return 0

    def _window(self, request: JobRequested, org_id: str) -> Window:
        """The window (plugin/salesforce/window.py): since_date, else the newest completed backup of
        the org that covered everything this one asks for (a narrower one would hide changes)."""
        if request.backup_type != "incremental" or request.since_date:
            return choose_window(request.backup_type, request.since_date)
        include = {
            "include_files": request.include_files,
            "include_attachments": request.include_attachments,
            "include_documents": request.include_documents,
        }
        passed_over: list[dict[str, str]] = []
        store = ProjectionStore(self.log)
        for offset in range(0, BASE_CANDIDATES, 20):
            for base in store.backups(limit=20, offset=offset, org_id=org_id):
                manifest = read_manifest(Path(base.backup_directory)) if base.backup_directory else None
                reason = uncovered(
                    manifest,
                    objects_filter=request.objects_filter,
                    include=include,
                    content_versions=request.content_versions,
                )
                if reason is not None:
                    passed_over.append({"job_id": base.job_id, "reason": reason})
                    continue
                end = base_end(base.started_at, manifest)
                described = {
                    "job_id": base.job_id,
                    "backup_directory": base.backup_directory,
                    "backup_type": base.backup_type,
                    "started_at": base.started_at,
                    "window_end": end,
                    "manifest_sha256": base.manifest_sha256,
                    "newer_backups_passed_over": passed_over[:10],
                }
                return choose_window(request.backup_type, None, base=described, base_window_end=end)
        # No base: the incremental backup is a full export (the manifest says which were passed over).
        window = choose_window(request.backup_type, None)
        return replace(window, base_backup={"newer_backups_passed_over": passed_over[:10]}) if passed_over else window


def resumable(events: list[Any]) -> str | None:
    """Why this stream cannot be resumed, or None: its last attempt must have ended in a retryable
    failure or an interruption (a running or finished job is never resumed)."""
    ends = [e for e in events if e.type in TERMINAL or e.type == "job.started"]
    if not ends or ends[-1].type == "job.started":
        return "the job has no ended attempt (it never started, or its worker may still run)"
    last = ends[-1]
    if last.type == "job.failed" and last.data.get("retryable"):
        return None
    if last.type == "job.interrupted":
        return None
    return f"its last attempt ended with {last.type}" + (" (not retryable)" if last.type == "job.failed" else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfbackup-worker")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--resume", action="store_true", help="start the next attempt of a failed/interrupted job")
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    os.umask(0o077)  # a backup holds the org's data: every file and folder it writes is owner-only
    configure_logging(os.environ.get("SFBACKUP_LOG_LEVEL") or "INFO")
    worker = JobWorker(args.home, args.job_id, resume=args.resume)
    try:
        return worker.run()
    finally:
        _shrink_wal(worker.log)
        worker.log.close()


def _shrink_wal(event_log: EventLog) -> None:
    """The job has its last event: a good moment to truncate a WAL that a long reader let grow."""
    try:
        done = event_log.checkpoint()
    except EventLogError as e:
        log.warning("wal checkpoint failed", error=str(e))
        return
    if done.busy:
        log.info("wal checkpoint left for later: readers still use it", wal_bytes=done.wal_bytes_after)


if __name__ == "__main__":
    sys.exit(main())
