"""One object's records over the REST API (queryAll), paged by us.

We follow ``nextRecordsUrl`` ourselves (``OrgClient.query_page``), so a page whose connection
dropped or whose session expired is fetched again from the same locator; the next page is on its
way while the current one is written. A wide object is queried
in field chunks, each ``ORDER BY Id``, joined row by row (streaming, never the object in memory).
An object whose query times out is read in Id ranges, halved until each range answers in time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from plugin.salesforce.client import OrgClient
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceApiError, SalesforceDataError
from plugin.salesforce.firstpages import FirstPages
from plugin.salesforce.idranges import IdRange
from plugin.salesforce.sizing import REST_URL_BUDGET, field_chunks

PROGRESS_ROWS = 2000  # rows between progress callbacks
URI_TOO_LONG = frozenset({"HTTP_414", "HTTP_431"})
_SHRINKS = 3  # times the URL budget is halved when Salesforce still finds a URI too long


@dataclass
class RestResult:
    rows: int
    deleted: int  # rows with IsDeleted = true (recycle bin)
    announced: int | None  # what Salesforce's totalSize promised, over every query made
    field_chunks: int = 1
    id_ranges: int = 0  # 0: one query for the whole object


def soql_for(object_name: str, columns: Sequence[str], *, where: str | None = None, by_id: bool = False) -> str:
    """A SELECT over describe names (never user input); ``by_id`` orders by Id for joins and ranges."""
    soql = f"SELECT {', '.join(columns)} FROM {object_name}"
    if where:
        soql += f" WHERE {where}"
    if by_id:
        soql += " ORDER BY Id"
    return soql


class RestRecords:
    """Writes every row of one object into ``sink``; ``on_rows`` hears the running row count."""

    def __init__(
        self,
        client: OrgClient,
        object_name: str,
        columns: Sequence[str],
        sink: CsvSink,
        *,
        on_rows: Callable[[int], None],
        where: str | None = None,
        budget: int = REST_URL_BUDGET,
        first_pages: FirstPages | None = None,
    ) -> None:
        self.client = client
        self.first_pages = first_pages
        self.where = where
        self.object = object_name
        self.columns = list(columns)
        self.sink = sink
        self.on_rows = on_rows
        self.budget = budget
        self.announced: int | None = None
        self.deleted = 0
        self.last_id: Any = None

    # -- queries --------------------------------------------------------------------------------
    def _pages(self, soql: str, *, announce: bool) -> Iterator[list[dict[str, Any]]]:
        """The pages of one query; the next page is fetched while the caller writes this one."""
        page = self.first_pages.take(self.object, soql) if self.first_pages is not None else None
        if page is None:
            page = self.client.query_page(soql=soql, object_name=self.object)
        total = str(page.get("totalSize"))  # numbers are parsed as their literal text
        if announce and total.isdigit():
            self.announced = int(total) + (self.announced or 0)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sfbackup-{self.object}") as ahead:
            while True:
                following: Future[dict[str, Any]] | None = None
                if not page.get("done", True):
                    url = page.get("nextRecordsUrl")
                    if not isinstance(url, str) or not url:
                        raise SalesforceDataError(
                            f"A {self.object} query page says more rows follow but gives no nextRecordsUrl.",
                            object_name=self.object,
                        )
                    following = ahead.submit(self.client.query_page, next_url=url, object_name=self.object)
                try:
                    yield page["records"]
                except BaseException:
                    if following is not None:
                        following.cancel()
                    raise
                if following is None:
                    return
                page = following.result()

    def _one(self, soql: str, *, announce: bool = True) -> Iterator[dict[str, Any]]:
        for records in self._pages(soql, announce=announce):
            yield from records

    def _records(self, chunks: list[list[str]], where: str | None, by_id: bool) -> Iterator[dict[str, Any]]:
        if len(chunks) == 1:
            yield from self._one(soql_for(self.object, chunks[0], where=where, by_id=by_id))
            return
        # Every chunk query announces the same rows: the first one's totalSize counts.
        streams = [
            self._one(soql_for(self.object, c, where=where, by_id=True), announce=n == 0) for n, c in enumerate(chunks)
        ]
        for parts in zip_longest(*streams):
            ids = {p.get("Id") if p is not None else None for p in parts}
            if len(ids) != 1 or None in ids:
                raise SalesforceDataError(
                    f"{self.object} changed while its {len(chunks)} field chunks were read (Ids "
                    f"{sorted(str(i) for i in ids)} at one row); export it again.",
                    code="CHUNKS_DIVERGED",
                    retryable=True,
                    object_name=self.object,
                )
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part)
            yield merged

    def _write(self, records: Iterator[dict[str, Any]]) -> None:
        """Write rows; ``last_id`` follows the last one written (a range resumes after it)."""
        sink, on_rows = self.sink, self.on_rows
        for record in records:
            sink.write(record)
            self.last_id = record.get("Id")
            if record.get("IsDeleted") is True:
                self.deleted += 1
            if sink.rows % PROGRESS_ROWS == 0:
                on_rows(sink.rows)
        on_rows(sink.rows)

    def _chunks(self) -> list[list[str]]:
        return field_chunks(self.object, self.columns, base_url=self.client.base_url, budget=self.budget)

    # -- the two ways ---------------------------------------------------------------------------
    def export(self) -> RestResult:
        """One query (or one per field chunk) for the whole object.

        Raises:
            SalesforceApiError: QUERY_TIMEOUT (the caller moves to Bulk or ``export_ranges``) and
                any other refusal.
        """
        for _ in range(_SHRINKS + 1):
            chunks = self._chunks()
            try:
                self._write(self._records(chunks, self.where, by_id=len(chunks) > 1))
            except SalesforceApiError as e:
                if e.code not in URI_TOO_LONG or self.sink.rows:
                    raise
                self.budget //= 2  # Salesforce counts more than we do (headers, proxies): ask for less
                self.announced = None
                continue
            return RestResult(self.sink.rows, self.deleted, self.announced, len(chunks))
        raise SalesforceApiError(
            f"Salesforce refused even {self.budget}-character query URLs for {self.object}.",
            code="URI_TOO_LONG",
            object_name=self.object,
        )

    def _within(self, condition: str) -> str:
        return f"({self.where}) AND {condition}" if self.where else condition

    def _edge_id(self, descending: bool) -> str | None:
        soql = soql_for(self.object, ["Id"], where=self.where, by_id=True)
        page = self.client.query_page(soql=f"{soql}{' DESC' if descending else ''} LIMIT 1", object_name=self.object)
        records = page["records"]
        return str(records[0]["Id"]) if records else None

    def export_ranges(self) -> RestResult:
        """The object in Id ranges, ``ORDER BY Id``; a range that times out is halved (from the last
        row it gave) until every range answers.

        Raises:
            SalesforceApiError: QUERY_TIMEOUT on a range of one or two Ids, or another refusal.
        """
        first, last = self._edge_id(False), self._edge_id(True)
        if first is None or last is None:
            return RestResult(0, 0, 0, 1, 0)
        chunks = self._chunks()
        pending = [IdRange.covering(first, last)]
        ranges = 0
        self.announced = 0
        while pending:
            current = pending.pop()
            ranges += 1
            announced, rows_before = self.announced, self.sink.rows
            self.last_id = None
            try:
                self._write(self._records(chunks, self._within(current.soql_filter()), by_id=True))
            except SalesforceApiError as e:
                if e.code != "QUERY_TIMEOUT":
                    raise
                self.announced = (announced or 0) + self.sink.rows - rows_before  # what it did give
                rest = current.from_after(str(self.last_id)) if self.last_id else current
                if not rest.splittable:
                    raise SalesforceApiError(
                        f"{self.object}: QUERY_TIMEOUT even for the Id range {rest.soql_filter()}; "
                        "ask Salesforce support about the object's indexes.",
                        code="QUERY_TIMEOUT",
                        retryable=True,
                        object_name=self.object,
                    ) from e
                lower, upper = rest.halves()
                pending.extend((upper, lower))  # the lower half next: rows stay in Id order
        return RestResult(self.sink.rows, self.deleted, self.announced, len(chunks), ranges)
