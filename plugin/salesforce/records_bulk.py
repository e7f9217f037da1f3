"""One object's records through a Bulk API 2.0 query job, written in the REST path's exact format.

Each results page is copied as it streams in, straight into the object's CSV (bulkrows.py: the
Bulk API's CSV, asked for with CRLF line ends, is our form but for datetimes); if the connection
drops midway, the CSV is cut back to where the page began and the page is fetched again with the
same locator. (A gzip CSV cannot be cut back: then each page is saved to a spool file first and
copied once complete.) Any way the job cannot deliver raises ``BulkUnusableError`` and the caller
uses REST.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.bulkapi import BulkQueryApi
from plugin.salesforce.bulkrows import BulkLayout, copy_page
from plugin.salesforce.client import CHUNK, OrgClient
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import (
    SalesforceApiError,
    SalesforceDataError,
    SalesforceError,
    SalesforceLimitError,
)
from plugin.salesforce.prefetch import read_ahead
from plugin.salesforce.records_rest import soql_for

_POLL_SCHEDULE = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between polls; polls are API calls


class BulkUnusableError(SalesforceError):
    """The Bulk API refused the query or its job did not deliver every row; use REST instead."""


@dataclass
class BulkResult:
    rows: int
    deleted: int
    announced: int  # numberRecordsProcessed of the job
    job_id: str
    pages: int
    polls: int


class BulkRecords:
    """Writes every row of one object into ``sink`` through one Bulk API 2.0 queryAll job."""

    def __init__(
        self,
        client: OrgClient,
        object_name: str,
        columns: Sequence[str],
        describe: Mapping[str, Any],
        sink: CsvSink,
        *,
        spool: Path,
        poll_timeout: float,
        on_rows: Callable[[int], None],
        where: str | None = None,
        ahead: BulkAhead | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ahead = ahead  # the job created ahead for this object, and the next object's (bulkahead.py)
        self.api = BulkQueryApi(client, object_name)
        self.client = client
        self.object = object_name
        self.where = where
        self.columns = list(columns)
        types = {str(f.get("name")): f.get("type") for f in describe.get("fields", []) if isinstance(f, Mapping)}
        self.layout = BulkLayout.of(object_name, self.columns, types)
        self.sink = sink
        self.spool = spool
        self.poll_timeout = poll_timeout
        self.on_rows = on_rows
        self.clock = clock
        self.sleep = sleep

    def export(self) -> BulkResult:
        """Create the job, wait for it (at most ``poll_timeout``), stream its pages into the CSV.

        Raises:
            BulkUnusableError: refused at creation, job Failed/Aborted, stuck past the deadline
                (it is aborted), or results that do not add up; the CSV is then not complete.
            SalesforceLimitError, SalesforceAuthError, SalesforceNetworkError: stop the whole job.
        """
        soql = soql_for(self.object, self.columns, where=self.where)
        job, created_at = self._job(soql)
        if self.ahead is not None:  # this object's job is on its way: the next one's may start
            self.ahead.prepare_after(self.object)
        job_id = str(job.get("id") or "")
        if not job_id:
            raise BulkUnusableError("Bulk API created a job without an id.", object_name=self.object)
        info, polls = self._wait(job_id, created_at)
        try:
            announced = int(info.get("numberRecordsProcessed") or 0)
        except (TypeError, ValueError):
            announced = -1
        rows = deleted = pages = 0
        locator: str | None = None
        try:
            while True:
                announced_page, following, got, gone = self._page(job_id, locator, rows)
                pages += 1
                if got != announced_page:
                    raise SalesforceDataError(
                        f"Bulk results page {pages} of {self.object} holds {got} rows; Salesforce said "
                        f"{announced_page} (Sforce-NumberOfRecords).",
                        object_name=self.object,
                    )
                rows += got
                deleted += gone
                self.on_rows(rows)
                if following is None:
                    break
                locator = following
        except SalesforceLimitError:
            raise
        except (SalesforceApiError, SalesforceDataError) as e:
            raise BulkUnusableError(f"Bulk job {job_id} results failed: {e}", object_name=self.object) from e
        finally:
            self.spool.unlink(missing_ok=True)
        if rows != announced:
            raise BulkUnusableError(
                f"Bulk job {job_id} gave {rows} rows but processed {announced} (numberRecordsProcessed).",
                code="BULK_COUNT_MISMATCH",
                object_name=self.object,
            )
        return BulkResult(rows, deleted, announced, job_id, pages, polls)

    def _job(self, soql: str) -> tuple[Mapping[str, Any], float]:
        """This object's job (the one created ahead for it, if any) and when it was created."""
        taken = self.ahead.take(self.object, soql) if self.ahead is not None else None
        if taken is not None:
            job, error, created_at = taken.job, taken.error, taken.created_at
        else:
            created_at = self.clock()
            try:
                job, error = self.api.create(soql), None
            except SalesforceError as e:
                job, error = None, e
        if isinstance(error, SalesforceApiError) and not isinstance(error, SalesforceLimitError):
            raise BulkUnusableError(
                f"Bulk API refused the query: {error}", code=error.code, object_name=self.object
            ) from error
        if error is not None:
            raise error  # limits, the session, the network: they stop the whole job
        assert job is not None
        return job, created_at

    def _page(self, job_id: str, locator: str | None, before: int) -> tuple[int, str | None, int, int]:
        """One results page into the CSV: (rows announced, next locator, rows written, deleted)."""
        if not self.sink.rewindable:
            page = self.api.results(job_id, locator, self.spool)
            with open(self.spool, "rb") as fh:
                got, gone = copy_page(iter(lambda: fh.read(CHUNK), b""), self.layout, self.sink)
            return page.records, page.locator, got, gone
        mark = self.sink.mark()

        def fetch() -> tuple[int, str | None, int, int]:
            self.sink.rewind(mark)  # a page fetched again starts where the first try did
            response, announced, following = self.api.open_results(job_id, locator)
            with response, read_ahead(response.iter_content(CHUNK)) as chunks:
                got, gone = copy_page(chunks, self.layout, self.sink, on_batch=lambda n: self.on_rows(before + n))
            return announced, following, got, gone

        try:
            return self.client.with_retries(fetch, object_name=self.object)
        except BaseException:
            self.sink.rewind(mark)
            raise

    def _wait(self, job_id: str, created_at: float) -> tuple[dict[str, Any], int]:
        """Poll until the job ends. The first poll is due ``_POLL_SCHEDULE[0]`` after the job's
        creation: a job created ahead, long ago, is polled at once."""
        deadline = self.clock() + self.poll_timeout
        polls = 0
        while True:
            if polls:
                self.sleep(_POLL_SCHEDULE[min(polls, len(_POLL_SCHEDULE) - 1)])
            elif (first := created_at + _POLL_SCHEDULE[0] - self.clock()) > 0:
                self.sleep(first)
            try:
                info = self.api.poll(job_id)
            except SalesforceLimitError:
                raise
            except SalesforceApiError as e:
                raise BulkUnusableError(f"Polling Bulk job {job_id} failed: {e}", object_name=self.object) from e
            polls += 1
            state = info.get("state")
            if state == "JobComplete":
                return info, polls
            if state in ("Failed", "Aborted"):
                message = info.get("errorMessage") or "no error message"
                raise BulkUnusableError(
                    f"Bulk job {job_id} ended {state}: {message}",
                    code=f"BULK_{str(state).upper()}",
                    object_name=self.object,
                )
            if self.clock() >= deadline:
                self.api.abort(job_id)
                raise BulkUnusableError(
                    f"Bulk job {job_id} was still {state} after {self.poll_timeout:g} s "
                    "(SFBACKUP_BULK_POLL_TIMEOUT); it was aborted.",
                    code="BULK_STUCK",
                    object_name=self.object,
                )
