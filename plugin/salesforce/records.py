"""One object's records from start to end: REST or Bulk by size, the fallbacks, refusals, checks.

    Bulk (objects >= threshold) --refused, failed, stuck--> REST
    REST --INVALID_QUERY_LOCATOR--> REST again from the start (once)
    REST --QUERY_TIMEOUT--> Bulk (if not tried and possible) --> REST in Id ranges

What can happen to an object, and what the job does:

- Salesforce refuses the object itself (it needs a filter, is not queryable, is not supported):
  ``ObjectRefusedError``, a skip with Salesforce's reason; the job goes on.
- The org's limits, the session or the network fail (``stops_job``): the job stops, retryable,
  and a resume fetches only what is missing.
- Anything else (an unexpected error body, data that does not add up): the error propagates
  with the object's name; the exporter records it and the backup is not presented as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.client import OrgClient
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceApiError, SalesforceError, stops_job
from plugin.salesforce.firstpages import FirstPages
from plugin.salesforce.plan import FieldPlan
from plugin.salesforce.records_bulk import BulkRecords, BulkUnusableError
from plugin.salesforce.records_rest import RestRecords
from plugin.salesforce.sizing import Method

log = structlog.get_logger("sfbackup.records")

# errorCodes with which Salesforce refuses an object as such (section 3 of the API notes).
REFUSAL_CODES = frozenset(
    {
        "INVALID_TYPE_FOR_OPERATION",  # not queryable at all (*ChangeEvent, ActivityHistory, ...)
        "EXTERNAL_OBJECT_UNSUPPORTED_EXCEPTION",  # needs a filter (DataStatistics, PlatformAction, ...)
        "EXTERNAL_OBJECT_EXCEPTION",
        "DATACLOUD_API_DISABLED_EXCEPTION",
        "INVALID_TYPE",  # listed by describeGlobal, but not for this user or API version
    }
)
_FILTER_WORDS = ("implementation restriction", "filter", "where clause", "is required")


class ObjectRefusedError(SalesforceError):
    """Salesforce will not answer any query of this object as a whole; ``reason`` says why."""

    def __init__(self, reason: str, *, code: str, object_name: str) -> None:
        super().__init__(reason, code=code, object_name=object_name)
        self.reason = reason


def refusal(error: SalesforceApiError) -> str | None:
    """Salesforce's reason when an error refuses the object itself (MALFORMED_QUERY only when it
    asks for a filter: a malformed query of ours is a bug, not a skip)."""
    text = str(error)
    if error.code in REFUSAL_CODES or (
        error.code == "MALFORMED_QUERY" and any(w in text.lower() for w in _FILTER_WORDS)
    ):
        return f"Salesforce refuses queries on this object: {text}"
    return None


@dataclass
class RecordsOutcome:
    """What one object's CSV holds and how it was fetched (the record part of a manifest entry)."""

    method: Method
    rows: int
    deleted: int
    sha256: str
    bytes: int
    file: Path
    announced: int | None = None  # rows Salesforce announced (totalSize / numberRecordsProcessed)
    announced_by: str | None = None
    field_chunks: int = 1
    id_ranges: int = 0
    bulk_job: str | None = None
    fallbacks: list[str] = field(default_factory=list)  # why an earlier way was abandoned

    @property
    def short_by(self) -> int:
        """Rows Salesforce announced that the CSV does not hold (0 when complete or unknown)."""
        return max(0, (self.announced or 0) - self.rows)


@dataclass
class ObjectRecords:
    """Exports the records of one object into ``path`` (the CSV), as the sizing decided."""

    client: OrgClient
    plan: FieldPlan
    describe: Mapping[str, Any]
    path: Path
    method: Method
    bulk_refused: str | None  # why Bulk cannot take this object (sizing.bulk_refusal), or None
    poll_timeout: float
    on_rows: Callable[[int], None]
    compress: bool = False
    where: str | None = None  # an incremental window (plan.window_filter)
    ahead: BulkAhead | None = None  # jobs created ahead (bulkahead.py)
    first_pages: FirstPages | None = None  # small objects' first pages, five to a call (firstpages.py)

    @property
    def name(self) -> str:
        return self.plan.object

    def export(self) -> RecordsOutcome:
        """Raises:
        ObjectRefusedError: a skip with Salesforce's reason.
        SalesforceError: job-stopping ones (``stops_job``) and per-object failures.
        """
        fallbacks: list[str] = []
        tried_bulk = False
        if self.method == "bulk":
            tried_bulk = True
            try:
                return self._bulk(fallbacks)
            except BulkUnusableError as e:
                self._fell_back(fallbacks, f"Bulk API: {e}")
        try:
            return self._rest_from_scratch(fallbacks)
        except SalesforceApiError as e:
            if e.code != "QUERY_TIMEOUT":
                raise self._refused_or(e) from e
            self._fell_back(fallbacks, f"REST: {e}")
        if not tried_bulk and self.bulk_refused is None:
            try:
                return self._bulk(fallbacks)
            except BulkUnusableError as e:
                self._fell_back(fallbacks, f"Bulk API: {e}")
        try:
            return self._rest(fallbacks, ranges=True)
        except SalesforceApiError as e:
            raise self._refused_or(e) from e

    def _rest_from_scratch(self, fallbacks: list[str]) -> RecordsOutcome:
        """REST; a query cursor that expired midway (INVALID_QUERY_LOCATOR) means starting over once."""
        try:
            return self._rest(fallbacks, ranges=False)
        except SalesforceApiError as e:
            if e.code != "INVALID_QUERY_LOCATOR":
                raise
            self._fell_back(fallbacks, f"REST: {e}; started over")
        return self._rest(fallbacks, ranges=False)

    def _fell_back(self, fallbacks: list[str], why: str) -> None:
        fallbacks.append(why)
        log.warning("falling back", object=self.name, why=why)

    def _refused_or(self, error: SalesforceApiError) -> SalesforceError:
        reason = refusal(error)
        if reason is None or stops_job(error):
            return error
        return ObjectRefusedError(reason, code=error.code, object_name=self.name)

    def _sink(self) -> CsvSink:
        return CsvSink(self.path, self.plan.columns, compress=self.compress)

    def _finish(self, sink: CsvSink, outcome: dict[str, Any]) -> RecordsOutcome:
        sha = sink.close()
        return RecordsOutcome(sha256=sha, bytes=sink.path.stat().st_size, file=sink.path, **outcome)

    def _bulk(self, fallbacks: list[str]) -> RecordsOutcome:
        sink = self._sink()
        try:
            result = BulkRecords(
                self.client,
                self.name,
                self.plan.columns,
                self.describe,
                sink,
                spool=self.path.with_name(f".{self.path.name}.bulk-page"),
                poll_timeout=self.poll_timeout,
                on_rows=self.on_rows,
                where=self.where,
                ahead=self.ahead,
            ).export()
        except BaseException:
            sink.abort()
            raise
        return self._finish(
            sink,
            {
                "method": "bulk",
                "rows": result.rows,
                "deleted": result.deleted,
                "announced": result.announced,
                "announced_by": "numberRecordsProcessed",
                "bulk_job": result.job_id,
                "fallbacks": fallbacks,
            },
        )

    def _rest(self, fallbacks: list[str], *, ranges: bool) -> RecordsOutcome:
        if self.ahead is not None:  # while these pages come, the next object's Bulk job may run
            self.ahead.prepare_after(self.name)
        sink = self._sink()
        try:
            rest = RestRecords(
                self.client,
                self.name,
                self.plan.columns,
                sink,
                on_rows=self.on_rows,
                where=self.where,
                first_pages=self.first_pages,
            )
            result = rest.export_ranges() if ranges else rest.export()
        except BaseException:
            sink.abort()
            raise
        return self._finish(
            sink,
            {
                "method": "rest",
                "rows": result.rows,
                "deleted": result.deleted,
                "announced": result.announced,
                "announced_by": "totalSize",
                "field_chunks": result.field_chunks,
                "id_ranges": result.id_ranges,
                "fallbacks": fallbacks,
            },
        )
