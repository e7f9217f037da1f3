"""Every planned object of a backup in turn: its records, its manifest entry, its file-body tasks.

``records_export.py`` exports one object; this keeps what spans the objects of a plan: the
describes, fetched 25 to an API call as the objects' turns come (``describes.py``), the Bulk job
created for the next object while this one's records arrive (``bulkahead.py``), the next small
objects' first pages fetched with this one's (``firstpages.py``), and on a resume
the objects an earlier attempt finished, taken as they are instead of exported again
(``resume.py``). Linked objects (ContentDocumentLink) take their own road (``links.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from plugin.config import ExportSettings
from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.client import OrgClient
from plugin.salesforce.describes import PlannedDescribes
from plugin.salesforce.errors import SalesforceError, stops_job
from plugin.salesforce.files import FileTask, tasks_for
from plugin.salesforce.firstpages import FirstPages
from plugin.salesforce.links import LinkedExport, export_linked_object
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.plan import FILE_OBJECTS, LINKED_OBJECTS, record_conditions
from plugin.salesforce.progress import ProgressReporter
from plugin.salesforce.records_export import ObjectExporter, describe_failed
from plugin.salesforce.resume import ResumePoint, reusable_entry

LOOKAHEAD = 25  # objects after the current one looked at for first pages to fetch along (a describe batch)


class PlannedObjects:
    """The objects of one backup's plan, exported in order into its ``.partial`` folder."""

    def __init__(
        self,
        client: OrgClient,
        partial_dir: Path,
        options: ExportOptions,
        *,
        settings: ExportSettings,
        progress: ProgressReporter,
        resume: ResumePoint | None,
    ) -> None:
        self.client = client
        self.partial_dir = partial_dir
        self.options = options
        self.settings = settings
        self.progress = progress
        self.resume = resume
        self.counts: dict[str, int] | None = None
        self.reused: set[str] = set()  # objects a resume took from earlier attempts
        self._reusable: dict[str, dict[str, Any] | None] = {}  # what a resume may take, per object
        self.describes = PlannedDescribes(client, (), wanted=lambda name: True)  # plan() plans the real one
        self.linked: dict[str, LinkedExport] = {}
        self._available: set[str] = set()
        self._order: list[str] = []
        self._position: dict[str, int] = {}
        self.ahead = BulkAhead(client, self._upcoming)
        self.first_pages = FirstPages(client, self._upcoming_small)

    def plan(self, objects: Sequence[str], *, counts: dict[str, int] | None, available: set[str]) -> None:
        """The objects to export, in order; their record counts (None: unknown); the queryable objects."""
        self._available = available
        self.counts = counts
        # Objects a resume reuses keep the describe their attempt saved: never described again.
        self.describes = PlannedDescribes(
            self.client, objects, wanted=lambda n: n in LINKED_OBJECTS or self._reusable_entry(n) is None
        )
        self._order = list(objects)
        self._position = {name: n for n, name in enumerate(self._order)}

    def export(self, entries: dict[str, dict[str, Any]], tasks: list[FileTask]) -> None:
        """Every planned object in turn, into ``entries``; their file-body tasks into ``tasks``."""
        total = len(self._order)
        for done, name in enumerate(self._order):
            self.progress.exporting(done, total, name, force=True)
            object_tasks: list[FileTask] = []
            if name in LINKED_OBJECTS:
                entry = self._export_linked(name, done, total)
            else:
                entry, object_tasks = self._export_object(name, done, total)
                if record_conditions(name, content_versions=self.options.content_versions):
                    entry["content_versions"] = "latest: rows with IsLatest = true only"
            entries[name] = entry
            tasks.extend(object_tasks)
            self.progress.object_finished(
                done + 1,
                total,
                len(tasks),
                {
                    "object": name,
                    "records": entry["records"],
                    "sha256": entry.get("sha256"),
                    "status": entry["status"],
                    "reason": entry.get("reason") or entry.get("warning"),
                    "method": entry.get("method"),
                },
            )

    def _ahead_of(self, name: str, window: int) -> Iterator[tuple[ObjectExporter, Mapping[str, Any]]]:
        """The objects among the ``window`` after ``name`` that may be fetched for ahead, with their
        describes: not linked (ContentDocumentLink is read by Id filters), not reused by a resume, and
        described already (the describes come 25 at a time, at the first object's turn)."""
        position = self._position.get(name, len(self._order) - 1) + 1  # looked up twice an object: no scan
        for following in self._order[position : position + window]:
            if following in LINKED_OBJECTS or self._reusable_entry(following) is not None:
                continue
            describe = self.describes.peek(following)
            if describe is not None:
                yield self._object_exporter(following, 0, 0), describe.data

    def _upcoming(self, name: str) -> tuple[str, str] | None:
        """The object right after ``name`` and its Bulk query, when a job may be created for it ahead
        (``_ahead_of``) and it goes through Bulk."""
        for exporter, describe in self._ahead_of(name, 1):
            soql = exporter.bulk_query(describe)
            return None if soql is None else (exporter.name, soql)
        return None

    def _upcoming_small(self, name: str) -> Iterator[tuple[str, str]]:
        """The objects among the ``LOOKAHEAD`` after ``name`` whose first REST query may ride along in
        its composite request (``_ahead_of``, and small: ``rest_query``), with that query, nearest
        first: ``FirstPages`` takes as many as fit, so each is planned only when it is wanted."""
        for exporter, describe in self._ahead_of(name, LOOKAHEAD):
            soql = exporter.rest_query(describe)
            if soql is not None:
                yield exporter.name, soql

    def _reusable_entry(self, name: str) -> dict[str, Any] | None:
        """(Resumes only.) The entry of an object an earlier attempt finished, when it may be reused."""
        if name not in self._reusable:
            finished = self.resume.finished.get(name) if self.resume else None
            self._reusable[name] = reusable_entry(self.partial_dir, name, finished)
        return self._reusable[name]

    def _export_object(self, name: str, done: int, total: int) -> tuple[dict[str, Any], list[FileTask]]:
        reused = self._reusable_entry(name)
        before = self.progress.records
        exporter = self._object_exporter(name, done, total)
        entry = reused if reused is not None else exporter.export()
        if reused is not None:
            self.reused.add(name)
        return self._finished_object(name, exporter, entry, before)

    def _object_exporter(self, name: str, done: int, total: int) -> ObjectExporter:
        before = self.progress.records

        def on_rows(rows: int) -> None:
            self.progress.records = before + rows
            self.progress.exporting(done, total, name)

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
        self.progress.records = before + int(entry["records"])
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

    def _export_linked(self, name: str, done: int, total: int) -> dict[str, Any]:
        """A linked object (ContentDocumentLink): filtered queries per chunk of parent ids."""

        def counted() -> None:
            self.progress.records += 1
            self.progress.exporting(done, total, name)

        try:
            describe = self.describes.take(name)
        except SalesforceError as e:
            if stops_job(e):
                raise
            return describe_failed(name, e)
        entry, self.linked[name] = export_linked_object(
            self.client,
            name,
            describe,
            self.partial_dir,
            compress=self.options.compression,
            available=self._available,
            objects_filter=self.options.objects_filter,
            windowed=self.options.since is not None,
            on_record=counted,
        )
        return entry
