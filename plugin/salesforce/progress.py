"""How far a backup is, as the job status shows it: the counts, the percent, and how often to say so.

Every report becomes a ``job.progress`` event (the worker's ``on_progress``), so the reporter is
what bounds their number: the reports that mark a step (an object started or finished, the file
bodies announced, the manifest) always go out, the ones in between at most once per ``PROGRESS_INTERVAL``,
however many records or files there are. Each report is also where a backup asks whether it
should stop (a cancel, a lost lease): once per page of records, per file body, per object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugin.salesforce.errors import ExportStoppedError
from plugin.salesforce.files import FileResult

PROGRESS_INTERVAL = 1.0  # seconds between progress reports inside one object


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


def percent(done: int, total: int, files_done: int = 0, files_total: int = 0) -> int:
    """Objects weigh 97% of a backup without file bodies, 85% with them (the bodies 12%); 99 at most."""
    objects_share = 85 if files_total else 97
    pct = objects_share * done / total if total else objects_share
    if files_total:
        pct += 12 * files_done / files_total
    return min(99, int(pct))


class ProgressReporter:
    """The records, files and bytes a backup holds so far, reported through ``on_progress``."""

    def __init__(
        self,
        on_progress: Callable[[Progress], None],
        *,
        should_stop: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.on_progress = on_progress
        self.should_stop = should_stop  # asked on every progress report: per page, per file, per object
        self.records = 0
        self.files = 0
        self.bytes = 0
        self._clock = clock
        self._last_report: float | None = None

    def _due(self) -> bool:
        """Whether an unforced report may go out now: at most one per PROGRESS_INTERVAL.

        Two per object (started, finished), one for the manifest, and one per interval in between.
        """
        return self._last_report is None or self._clock() - self._last_report >= PROGRESS_INTERVAL

    def report(self, progress: Progress, *, force: bool = False) -> None:
        """Send ``progress`` when it marks a step (``force``) or is due.

        Raises:
            ExportStoppedError: ``should_stop`` said stop.
        """
        if self.should_stop():
            raise ExportStoppedError("The export was asked to stop.", code="STOPPED")
        if force or self._due():
            self._last_report = self._clock()
            self.on_progress(progress)

    def exporting(self, done: int, total: int, name: str, *, force: bool = False) -> None:
        """Object ``name`` (``done`` finished before it) started, or has more rows."""
        self.report(
            Progress("exporting", done, total, name, self.records, 0, 0, percent(done, total)),
            force=force,
        )

    def object_finished(self, done: int, total: int, files_total: int, finished: dict[str, Any]) -> None:
        """An object is finished (``done`` with it); ``files_total`` bodies are known so far."""
        self.report(
            Progress(
                "exporting",
                done,
                total,
                None,
                self.records,
                0,
                0,
                percent(done, total, 0, files_total),
                object_finished=finished,
            ),
            force=True,
        )

    def downloading(self, total: int, files_total: int, current: str | None = None, *, force: bool = False) -> None:
        """The file bodies: announced (``force``, before the first one) and as they arrive."""
        self.report(
            Progress(
                "downloading_files",
                total,
                total,
                current,
                self.records,
                self.files,
                self.bytes,
                percent(total, total, self.files, files_total),
                files_total=files_total,
            ),
            force=force,
        )

    def file_done(self, result: FileResult, total: int, files_total: int) -> None:
        self.files += 1
        self.bytes += result.size
        self.downloading(total, files_total, result.task.object)

    def writing_manifest(self, total: int, files_total: int) -> None:
        self.report(
            Progress(
                "writing_manifest",
                total,
                total,
                None,
                self.records,
                self.files,
                self.bytes,
                99,
                files_total=files_total,
            ),
            force=True,
        )
