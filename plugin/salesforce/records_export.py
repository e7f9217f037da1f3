"""One object of a backup: its describe, field plan, records and manifest entry.

The exporter (export.py) calls ``ObjectExporter.export`` per planned object and gets the entry
the manifest lists for it: exported (method, counts, checksum, record API calls), skipped (Salesforce
refused the object at query time, with its reason) or failed (the error). Job-stopping errors
(``errors.stops_job``) propagate. An exported object's entry is also saved for a resume.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog

from plugin.config import ExportSettings
from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.client import OrgClient, RawBody
from plugin.salesforce.describes import PlannedDescribes, save_describe
from plugin.salesforce.errors import SalesforceApiError, SalesforceError, stops_job
from plugin.salesforce.firstpages import PAGE_ROWS, FirstPages
from plugin.salesforce.plan import FieldPlan, plan_fields, window_filter
from plugin.salesforce.records import ObjectRecords, ObjectRefusedError, RecordsOutcome, refusal
from plugin.salesforce.records_rest import soql_for
from plugin.salesforce.resume import records_from_csv, save_entry
from plugin.salesforce.sizing import REST_URL_BUDGET, bulk_refusal, choose_method, field_chunks

log = structlog.get_logger("sfbackup.export")
T = TypeVar("T")


def record_counts(client: OrgClient, names: Sequence[str]) -> dict[str, int] | None:
    """Every planned object's record count in one ``limits/recordCount`` call; None when the org
    will not say (then every object starts on REST, and moves to Bulk only on QUERY_TIMEOUT)."""
    if not names:
        return {}
    try:
        return client.record_counts(names)
    except SalesforceError as e:
        if stops_job(e):
            raise
        log.warning("record counts unavailable; sizing every object as unknown", error=str(e))
        return None


def describe_failed(name: str, error: SalesforceError) -> dict[str, Any]:
    """The manifest entry of an object whose describe failed: skipped with Salesforce's reason when it
    refuses the object (``records.refusal``), else failed, so the job fails (OBJECTS_FAILED, retryable)
    and a resume describes it again. Its describe calls are the manifest's ``describes``, not its own."""
    if isinstance(error, SalesforceApiError) and refusal(error) is not None:
        return skipped(name, f"Salesforce refuses to describe this object: {error}", 0)
    return failed(name, error, 0, what="its describe")


def skipped(name: str, reason: str, api_calls: int) -> dict[str, Any]:
    """The entry of an object Salesforce refuses, with its reason (logged)."""
    log.info("skipped: Salesforce refuses the object", object=name, reason=reason)
    return {"status": "skipped", "reason": reason, "records": 0, "api_calls": api_calls}


def failed(name: str, error: SalesforceError, api_calls: int, *, what: str = "") -> dict[str, Any]:
    """The entry of an object that failed, with the error (logged)."""
    log.error(f"object failed{': ' + what if what else ''}", object=name, code=error.code, error=str(error))
    return {
        "status": "failed",
        "records": 0,
        "error": {"code": error.code, "message": str(error)},
        "api_calls": api_calls,
    }


class ObjectExporter:
    """Exports one object into a backup's ``.partial`` folder."""

    def __init__(
        self,
        client: OrgClient,
        name: str,
        partial_dir: Path,
        *,
        settings: ExportSettings,
        record_count: int | None,
        compress: bool,
        since: str | None,
        on_rows: Callable[[int], None],
        describes: PlannedDescribes,
        conditions: Sequence[str] = (),
        ahead: BulkAhead | None = None,
        first_pages: FirstPages | None = None,
    ) -> None:
        self.ahead = ahead
        self.first_pages = first_pages
        self.client = client
        self.describes = describes
        self.name = name
        self.partial_dir = partial_dir
        self.settings = settings
        self.record_count = record_count
        self.compress = compress
        self.since = since
        self.on_rows = on_rows
        self.conditions = tuple(conditions)  # options' row filters (plan.record_conditions)
        self._describe: Mapping[str, Any] | None = None

    @property
    def describe_path(self) -> Path:
        return self.partial_dir / "describe" / f"{self.name}.json"

    @property
    def describe(self) -> Mapping[str, Any]:
        """The object's describe (the saved copy when a resume reuses the object: no API call)."""
        if self._describe is None:
            self._describe = json.loads(self.describe_path.read_bytes())
        return self._describe

    @property
    def plan(self) -> FieldPlan:
        return plan_fields(self.describe)

    def export(self) -> dict[str, Any]:
        """Describe, plan and export the records; returns the manifest entry.

        Its ``api_calls`` are the record calls; the describe came in a shared Composite request,
        counted in the manifest's ``api_calls_breakdown.describes``.
        """
        try:
            try:
                body = self.describes.take(self.name)  # its calls are the manifest's describes
            except SalesforceError as e:
                if stops_job(e):
                    raise
                return describe_failed(self.name, e)
            calls = self.client.api_calls
            lent = self.ahead.spent if self.ahead is not None else 0
            return self._export(body, lambda: self._own_calls(calls, lent))
        finally:
            if self.ahead is not None:  # a job created ahead for this object that it did not use
                self.ahead.discard(self.name)
            if self.first_pages is not None:  # a first page fetched ahead that it did not use
                self.first_pages.discard(self.name)

    def _own_calls(self, calls: int, lent: int) -> int:
        """This object's API calls: those made ahead for the next object left out, its own made
        ahead (by the previous object) put in."""
        if self.ahead is None:
            return self.client.api_calls - calls
        self.ahead.discard(self.name)  # unused by now: aborted, on this object's count
        lent = self.ahead.spent - lent
        return self.client.api_calls - calls - lent + self.ahead.handed.pop(self.name, 0)

    def bulk_query(self, describe: Mapping[str, Any]) -> str | None:
        """The SOQL of this object's Bulk job when, with this describe, it goes through Bulk; else None."""
        plan = plan_fields(describe)
        refused = bulk_refusal(plan, describe)
        method = choose_method(self.record_count, threshold=self.settings.bulk_threshold, bulk_refused=refused)
        return soql_for(self.name, plan.columns, where=self._where(plan)) if method == "bulk" else None

    def rest_query(self, describe: Mapping[str, Any]) -> str | None:
        """The SOQL of this object's first REST query when, with this describe, it may ride along in
        another object's composite request (firstpages.py): REST, one field chunk, at most one page
        (or of unknown size); else None."""
        if self.record_count is not None and self.record_count > PAGE_ROWS:
            return None  # more than one page: known without planning it
        plan = plan_fields(describe)
        method = choose_method(
            self.record_count, threshold=self.settings.bulk_threshold, bulk_refused=bulk_refusal(plan, describe)
        )
        if method != "rest":
            return None
        chunks = field_chunks(self.name, plan.columns, base_url=self.client.base_url, budget=REST_URL_BUDGET)
        return soql_for(self.name, chunks[0], where=self._where(plan)) if len(chunks) == 1 else None

    def _export(self, body: RawBody, own_calls: Callable[[], int]) -> dict[str, Any]:
        save_describe(self.describe_path, body)
        self._describe = body.data
        plan = self.plan
        refused = bulk_refusal(plan, body.data)
        method = choose_method(self.record_count, threshold=self.settings.bulk_threshold, bulk_refused=refused)
        path = self.partial_dir / "data" / f"{self.name}.csv"
        records = ObjectRecords(
            self.client,
            plan,
            body.data,
            path,
            method,
            refused,
            self.settings.bulk_poll_timeout,
            self.on_rows,
            compress=self.compress,
            where=self._where(plan),
            ahead=self.ahead,
            first_pages=self.first_pages,
        )
        try:
            outcome = records.export()
        except ObjectRefusedError as e:
            self._discard(path)
            return skipped(self.name, e.reason, own_calls())
        except SalesforceError as e:
            if stops_job(e):
                raise
            self._discard(path)
            return failed(self.name, e, own_calls())
        entry = self._entry(plan, outcome, own_calls())
        save_entry(self.partial_dir, self.name, entry)
        return entry

    def _where(self, plan: FieldPlan) -> str | None:
        """The window and the options' conditions, ANDed (each one built from fixed names and literals)."""
        window = window_filter(plan, since=self.since)
        parts = [window, *self.conditions] if window else list(self.conditions)
        return " AND ".join(parts) if parts else None

    def _discard(self, path: Path) -> None:
        for candidate in (path, path.with_name(path.name + ".gz")):
            candidate.unlink(missing_ok=True)

    def _entry(self, plan: FieldPlan, outcome: RecordsOutcome, api_calls: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "status": "exported",
            "records": outcome.rows,
            "deleted_records": outcome.deleted,
            "fields": len(plan.columns),
            "method": outcome.method,
            "query": "queryAll",
            "file": str(outcome.file.relative_to(self.partial_dir)),
            "sha256": outcome.sha256,
            "bytes": outcome.bytes,
            "compression": "gzip" if self.compress else None,
            "api_calls": api_calls,
            "record_count": self.record_count,
            "announced_records": outcome.announced,
            "announced_by": outcome.announced_by,
        }
        if outcome.field_chunks > 1:
            entry["field_chunks"] = outcome.field_chunks
        if outcome.id_ranges:
            entry["id_ranges"] = outcome.id_ranges
        if outcome.bulk_job:
            entry["bulk_job"] = outcome.bulk_job
        if outcome.fallbacks:
            entry["fallbacks"] = outcome.fallbacks
        if outcome.short_by:
            # Salesforce's totalSize can be wrong (it is on FieldPermissions), so this is reported,
            # not fatal: the CSV holds every row the pages gave.
            entry["warning"] = (
                f"the CSV holds {outcome.rows} rows, {outcome.short_by} fewer than Salesforce announced "
                f"({outcome.announced_by} = {outcome.announced})"
            )
        if plan.compound_omitted:
            entry["compound_fields_omitted"] = plan.compound_omitted
        if self.since:
            entry["window"] = (
                {"field": plan.change_field, "after": self.since}
                if plan.change_field
                else {"note": "no SystemModstamp or LastModifiedDate: every row exported (changes cannot be told)"}
            )
        return entry

    def file_tasks(
        self, entry: Mapping[str, Any], make: Callable[[str, Mapping[str, Any], Iterable[str]], list[T]]
    ) -> list[T]:
        """File-body tasks from the object's finished CSV (fresh or resumed alike)."""
        plan = self.plan
        tasks: list[T] = []
        for record in records_from_csv(self.partial_dir / str(entry["file"]), self.describe):
            tasks.extend(make(self.name, record, plan.blob_fields))
        return tasks
