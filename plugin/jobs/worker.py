"""The worker process of one job: connects, exports, and records every step as an event.

Run as ``python -m plugin.jobs.worker --home HOME [--attempt N] JOB_ID`` by the runtime, which claimed
attempt N's lease first. The worker takes that lease, renews it from a second thread (``keeper.py``)
and appends only while it holds it (``leases.fenced_append``): a worker whose lease was taken over
records nothing more and exits with code 3. A cancel stops the export at its next progress report;
if the export is stuck in a network call, the keeper records ``job.cancelled`` itself after
``WORKER_STOP_GRACE``. After its job ended the worker starts queued jobs, waits
``SFBACKUP_CLEANUP_DELAY`` and cleans up (``cleanup.py``).

Attempt N > 1 is a resume: same job id, same ``<backup folder>.partial`` (``JobStarted.partial_directory``);
it exports only the objects no earlier attempt finished (``plugin.salesforce.resume``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path

import structlog

from events import EventLog, EventLogError
from events.codec import decode, encode
from events.ids import job_stream
from events.vocabulary import (
    EventPayload,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
    ObjectFinished,
    SkippedObject,
)
from plugin import config
from plugin.errors import LeaseLostError, PluginError
from plugin.jobs import leases
from plugin.jobs.afterend import after_end, spawn_after_end
from plugin.jobs.keeper import CANCEL, LeaseKeeper
from plugin.jobs.options import recheck_backup_directory
from plugin.jobs.procs import ProcessRef
from plugin.jobs.settings import WORKER_STOP_GRACE, RuntimeSettings
from plugin.jobs.state import read_state
from plugin.log_setup import configure_logging
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import ExportStoppedError, SalesforceError
from plugin.salesforce.export import Exporter
from plugin.salesforce.manifest import partial_directory, read_manifest
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.plan import ObjectSelection, UnknownObjectsError
from plugin.salesforce.progress import Progress
from plugin.salesforce.resume import ResumePoint, resume_point
from plugin.salesforce.window import Window, base_end, choose_window, uncovered
from projections import ProjectionStore

log = structlog.get_logger("sfbackup.worker")
EXIT_OK, EXIT_FAILED, EXIT_NO_JOB, EXIT_FENCED = 0, 1, 2, 3
BASE_CANDIDATES = 100  # completed backups looked at for the base of an incremental one


class JobEndedError(Exception):
    """The other thread already recorded the job's end: this thread's late events are dropped."""


class JobWorker:
    def __init__(self, home: Path, job_id: str, attempt: int = 1) -> None:
        self.home = home
        self.job_id = job_id
        self.stream = job_stream(job_id)
        self.log = EventLog.open(config.events_path(home))
        # Each append folds the job's events into the projections in its own transaction, so the
        # servers' status reads stay pure reads while backups run (leases.fenced_append).
        self.store = ProjectionStore(self.log)
        self.settings = RuntimeSettings.from_env(os.environ)
        self.attempt = attempt
        self.resume_point: ResumePoint | None = None
        self.phase = "planning"
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        # Every event the worker records was caused by the job's request and belongs to the same
        # MCP request, so an audit by correlation id shows all of it.
        self.causation_id: str | None = None
        self.correlation_id: str | None = None
        self.keeper: LeaseKeeper | None = None
        self.ended = False  # a terminal event is recorded (by either thread)
        self._append_lock = threading.Lock()

    # -- lease, heartbeat and cancel hooks ------------------------------------------------------
    def _append(self, payload: EventPayload, *, terminal: bool = False) -> None:
        """Append while holding the lease (checked in the append's transaction); a terminal event
        releases the lease in that same transaction, which frees the worker slot.

        Raises:
            LeaseLostError: fenced: the event was not recorded.
            JobEndedError: the job's end is already recorded.
        """
        metadata = {
            "actor": "worker",
            "worker_id": self.worker_id,
            "pid": os.getpid(),
            "attempt": self.attempt,
        }
        event = encode(payload, metadata=metadata, correlation_id=self.correlation_id, causation_id=self.causation_id)
        with self._append_lock:
            if self.ended:
                raise JobEndedError(self.job_id)
            leases.fenced_append(
                self.log,
                self.job_id,
                self.attempt,
                self.worker_id,
                [event],
                expected_version=None,
                release_lease=terminal,
                store=self.store,
            )
            self.ended = terminal

    def _finish(self, payload: EventPayload, code: int) -> int:
        """Record the terminal event; a fenced or already ended worker records nothing."""
        try:
            self._append(payload, terminal=True)
        except LeaseLostError as e:
            log.warning("fenced; the end of this attempt is not recorded", job_id=self.job_id, error=str(e))
            return EXIT_FENCED
        except JobEndedError:
            return EXIT_OK
        return code

    def _take_lease(self) -> bool:
        with self.log.write_transaction() as tx:
            return leases.take(
                tx,
                self.job_id,
                self.attempt,
                self.worker_id,
                ProcessRef.me(),
                lease_seconds=self.settings.lease_seconds,
            )

    def _stop_soon(self, why: str) -> None:
        """The keeper saw a cancel or a fence: give the export WORKER_STOP_GRACE to stop by itself."""
        timer = threading.Timer(WORKER_STOP_GRACE, self._stop_now, args=(why,))
        timer.daemon = True
        timer.start()

    def _stop_now(self, why: str) -> None:
        """The export did not stop (stuck in a network call): end the process from this thread."""
        if self.ended:
            return
        if why != CANCEL:
            log.warning("fenced while the export was busy; exiting", job_id=self.job_id)
            os._exit(EXIT_FENCED)
        try:
            self._append(JobCancelled(forced=False), terminal=True)
        except JobEndedError:
            return  # the export stopped by itself after all
        except LeaseLostError:
            os._exit(EXIT_FENCED)
        log.info("job cancelled while the export was busy; exiting", job_id=self.job_id)
        spawn_after_end(self.home, self.job_id)
        os._exit(EXIT_OK)

    def _should_stop(self) -> bool:
        return self.keeper is not None and self.keeper.reason() is not None

    def run(self) -> int:
        events = self.log.read_stream(self.stream)
        if not events:
            log.error("no such job", job_id=self.job_id)
            return EXIT_NO_JOB
        self.causation_id = events[0].event_id
        self.correlation_id = events[0].correlation_id
        request = decode(events[0])
        assert isinstance(request, JobRequested)
        if self.attempt > 1:
            # The runtime claimed this attempt for an interrupted or retryably failed job: reuse what
            # earlier attempts finished (checked again against the files by the exporter).
            found = resume_point(decode(e) for e in events)
            self.resume_point = ResumePoint(self.attempt, found.finished)
        if not self._take_lease():
            log.warning("attempt has no claimed lease (started twice, or too late); nothing to do", job_id=self.job_id)
            return EXIT_FENCED
        self.keeper = LeaseKeeper(
            self.log,
            self.job_id,
            self.attempt,
            self.worker_id,
            self.settings,
            after=events[-1].stream_version,
            on_stop=self._stop_soon,
        )
        self.keeper.start()
        try:
            with self.log.write_transaction() as tx:
                state = read_state(tx, self.job_id)
            if state is not None and state.status.cancel_requested:
                return self._finish(JobCancelled(forced=False), EXIT_OK)
            return self._guarded(request)
        finally:
            self.keeper.stop()

    def _guarded(self, request: JobRequested) -> int:
        try:
            return self._run(request)
        except LeaseLostError as e:
            log.warning("fenced: another attempt owns the job now", job_id=self.job_id, error=str(e))
            return EXIT_FENCED
        except JobEndedError:
            return EXIT_OK
        except ExportStoppedError:
            if self.keeper is not None and self.keeper.reason() == CANCEL:
                log.info("job cancelled", job_id=self.job_id, phase=self.phase)
                return self._finish(JobCancelled(forced=False), EXIT_OK)
            log.warning("lease lost during the export; stopping without recording", job_id=self.job_id)
            return EXIT_FENCED
        except (PluginError, UnknownObjectsError) as e:
            code = getattr(e, "code", "INVALID_OBJECTS_FILTER" if isinstance(e, UnknownObjectsError) else "ERROR")
            retryable = bool(getattr(e, "retryable", False))
            log.error("job failed", job_id=self.job_id, code=code, error=str(e))
            failed = JobFailed(
                error_code=code, message=str(e), retryable=retryable, attempt=self.attempt, phase=self.phase
            )
            return self._finish(failed, EXIT_FAILED)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            message = f"Internal error {type(e).__name__}: {e}. See {self.home / 'logs' / (self.job_id + '.log')}."
            failed = JobFailed(
                error_code="INTERNAL_ERROR", message=message, retryable=False, attempt=self.attempt, phase=self.phase
            )
            return self._finish(failed, EXIT_FAILED)

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
                        partial_directory=str(partial_directory(final)),
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
                should_stop=self._should_stop,
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
            ),
            terminal=True,
        )
        log.info("job completed", job_id=self.job_id, records=result.records, files=result.files)
        return EXIT_OK

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
        for offset in range(0, BASE_CANDIDATES, 20):
            for base in self.store.backups(limit=20, offset=offset, org_id=org_id):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfbackup-worker")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument(
        "--attempt", type=int, default=1, help="The attempt whose claimed lease to take (a resume: n+1)."
    )
    parser.add_argument("--after-end", action="store_true", help="Only the after-end duties of an ended job.")
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    os.umask(0o077)  # a backup holds the org's data: every file and folder it writes is owner-only
    configure_logging(os.environ.get("SFBACKUP_LOG_LEVEL") or "INFO")
    if args.after_end:
        after_end(args.home, args.job_id)
        return EXIT_OK
    worker = JobWorker(args.home, args.job_id, args.attempt)
    try:
        code = worker.run()
        if worker.ended:
            after_end(args.home, args.job_id, worker.log)
    finally:
        _shrink_wal(worker.log)
        worker.log.close()
    return code


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
