"""The first query pages of several small objects in one Composite request: five objects an API call.

A real org has hundreds of queryable objects and most hold a few rows or none: one ``queryAll``
each is most of a backup's API calls. A composite request may carry up to five query subrequests
and counts as one call ("the entire series of requests counts as a single call toward your API
limits"; "up to 5 of these subrequests can be ... query operations, including Query and QueryAll").
So when an object starts its REST query, the query of the next small objects rides along, and
they find their first page waiting at their turn: for an object of at most one page, that is all
of it, in a fifth of a call.

What an object gets is what its direct query would have given it, or it queries directly:

- a page is kept only for the exact SOQL its object will send (the same field plan, window and
  conditions: ``ObjectExporter.rest_query``), is handed out once, and carries its own
  ``nextRecordsUrl``, followed as any page's is;
- a subresponse error is the error the direct query raises (``composite.error_of``), raised at that
  object's turn; one the direct call would have retried (5xx, 420, 429) leaves the object to query
  directly, as does any failure of the composite request itself;
- only objects sized at one page or unknown (``PAGE_ROWS``) ride along, so at most four pages of at
  most 2,000 rows wait in memory; one whose page says more rows follow and that waited past
  ``FRESH_FOR`` is queried again (Salesforce drops a query cursor after 15 idle minutes).

The composite is the API call of the object whose turn sent it (its manifest entry counts it);
the objects that rode along used none for their first page. A refusal that stops the job anyway
(``errors.stops_job``: the limit, the session, the network, a stop) is raised there and then.

Open query cursors: a waiting page with more to follow keeps its cursor open, and Salesforce keeps
a user's ten most recent, so a backup holds up to five where it held one; only objects recordCount
does not size can have more than one page here. A cursor Salesforce dropped all the same is an
INVALID_QUERY_LOCATOR, and that object starts over once (``records.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import structlog

from plugin.salesforce.client import OrgClient
from plugin.salesforce.composite import Subrequest, error_of, send_gets
from plugin.salesforce.errors import SalesforceDataError, SalesforceError, stops_job
from plugin.salesforce.literal import NumberLiteral
from plugin.salesforce.translate import retried_status

MAX_QUERIES = 5  # Salesforce: query subrequests in one composite request
PAGE_ROWS = 2000  # the batchSize every query asks for: objects of at most one page ride along
FRESH_FOR = 300.0  # seconds a waiting page with more to follow stays usable (cursors live 15 idle minutes)
BATCH_SIZE = {"Sforce-Query-Options": f"batchSize={PAGE_ROWS}"}

log = structlog.get_logger("sfbackup.salesforce")


@dataclass(frozen=True)
class _Waiting:
    soql: str
    page: dict[str, Any] | None
    error: SalesforceError | None
    fetched_at: float


class FirstPages:
    """First pages fetched ahead; ``upcoming(name)`` yields (object, SOQL) of the small objects after
    ``name``, nearest first (as many as wanted are taken)."""

    def __init__(
        self,
        client: OrgClient,
        upcoming: Callable[[str], Iterable[tuple[str, str]]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.upcoming = upcoming
        self.clock = clock
        self._waiting: dict[str, _Waiting] = {}
        self._asked: set[str] = set()  # objects whose query went into a composite already (once each)
        self.composites = 0  # composite requests sent (for tests and logs)
        self.served = 0  # first pages handed out from them

    def take(self, name: str, soql: str) -> dict[str, Any] | None:
        """The first page of ``name``'s query ``soql``: waiting, or fetched now with the next objects'
        queries; None when the object is to query directly.

        Raises:
            SalesforceError: what the direct query of ``soql`` would have raised (its subresponse).
        """
        waiting = self._waiting.pop(name, None)
        if waiting is None and name not in self._asked:
            waiting = self._fetch(name, soql)
        if waiting is None or waiting.soql != soql:
            return None
        if waiting.error is not None:
            raise waiting.error
        page = waiting.page
        assert page is not None
        if not page.get("done", True) and self.clock() - waiting.fetched_at > FRESH_FOR:
            return None
        self.served += 1
        return page

    def discard(self, name: str) -> None:
        """Forget a waiting page its object will not use (a resume reused it; the job stopped)."""
        self._waiting.pop(name, None)

    def _fetch(self, name: str, soql: str) -> _Waiting | None:
        self._asked.add(name)  # once per object: its later queries (chunks, Id ranges) go alone
        if self.client.composite_refused:
            return None
        group = [(name, soql)]
        for other, other_soql in self.upcoming(name):
            if other not in self._asked and other not in self._waiting:
                group.append((other, other_soql))
                if len(group) == MAX_QUERIES:
                    break
        if len(group) == 1:
            return None  # one query alone is one call either way: the direct one
        self._asked.update(other for other, _ in group)
        urls = {other: self._url(other_soql) for other, other_soql in group}
        try:
            answers = send_gets(self.client, {other: Subrequest(url, BATCH_SIZE) for other, url in urls.items()})
        except SalesforceError as e:
            if stops_job(e):  # a limit, the session, the network, a stop: at this object's turn, as alone
                raise
            log.warning("first pages: the composite request failed; querying one object at a time", error=str(e))
            return None  # each object queries alone, and meets the error there if it stays
        if answers is None:
            return None
        self.composites += 1
        fetched_at = self.clock()
        for other, other_soql in group:
            sub = answers[other]
            if retried_status(sub.status):  # the direct call's retries are its own
                continue
            try:
                if sub.status >= 300:
                    raise error_of(self.client, other, urls[other], sub)
                waiting = _Waiting(other_soql, _page(other, sub.raw), None, fetched_at)
            except SalesforceError as e:  # raised at that object's turn, not this one's
                waiting = _Waiting(other_soql, None, e, fetched_at)
            self._waiting[other] = waiting
        return self._waiting.pop(name, None)

    def _url(self, soql: str) -> str:
        return f"/services/data/v{self.client.api_version}/queryAll/?{urlencode({'q': soql})}"


def _page(name: str, raw: bytes) -> dict[str, Any]:
    """A query page as ``OrgClient.query_page`` reads it: numbers kept as their literal text."""
    page = json.loads(raw, parse_float=NumberLiteral, parse_int=NumberLiteral)
    if not isinstance(page, dict) or not isinstance(page.get("records"), list):
        raise SalesforceDataError("A query page has no records list.", object_name=name)
    return page
