"""The next object's Bulk API 2.0 query job, created while this object's records are fetched.

A Bulk query job runs on Salesforce's side for seconds before it is JobComplete; fetched one object
after another, every job's wait adds up. So when object k has its own job (or starts on REST), the
exporter creates object k+1's job at once, and k+1 finds it running, often finished, at its turn.
Only the very next object, only when it will go through Bulk (its describe already here, not
reused by a resume, not linked): the jobs are created in plan order, as one after another would.

What it costs and who pays: the creation is k+1's API call (``handed``: its manifest entry counts
it; k's does not, ``spent`` says how much to leave out). A job that is never used (a stop, a cancel,
k+1 taking another way) is aborted. A refused creation (the query is not for Bulk, a limit, the
session) is kept and raised at k+1's turn, exactly where creating the job then would have raised it.

Near the API reserve (``AHEAD_MARGIN`` calls or fewer above it) no job is created ahead: the call
it takes could be the one object k still needed, and k would stop where it finished before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugin.salesforce.bulkapi import BulkQueryApi
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import SalesforceError

AHEAD_MARGIN = 1000  # calls above the API reserve below which the export goes one object at a time


@dataclass(frozen=True)
class AheadJob:
    """A job created ahead: its id (or the error its creation raised) and when it was created."""

    name: str  # the object
    soql: str
    created_at: float  # on the exporter's clock
    job: dict[str, Any] | None
    error: SalesforceError | None


class BulkAhead:
    """Holds at most one job created ahead; ``upcoming(name)`` says (next object, its SOQL) or None."""

    def __init__(
        self,
        client: OrgClient,
        upcoming: Callable[[str], tuple[str, str] | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.upcoming = upcoming
        self.clock = clock
        self.spent = 0  # API calls made for objects other than the one being exported
        self.handed: dict[str, int] = {}  # object -> calls made ahead for it, charged at its turn
        self._pending: AheadJob | None = None
        self._calls = 0
        self._prepared: set[str] = set()

    @property
    def pending(self) -> AheadJob | None:
        return self._pending

    def prepare_after(self, name: str) -> None:
        """Create the job of the object after ``name`` when it goes through Bulk (once per object)."""
        if name in self._prepared or self._pending is not None:
            return
        self._prepared.add(name)
        following = self.upcoming(name)
        if following is None:
            return
        left = self.client.usage.above_reserve
        if left is not None and left <= AHEAD_MARGIN:
            return
        target, soql = following
        before = self.client.api_calls
        created_at = self.clock()
        try:
            job: dict[str, Any] | None = BulkQueryApi(self.client, target).create(soql)
            error = None
        except SalesforceError as e:  # kept for its turn: raised there as creating it then would
            job, error = None, e
        finally:
            self._calls = self.client.api_calls - before
            self.spent += self._calls
        self._pending = AheadJob(target, soql, created_at, job, error)

    def take(self, name: str, soql: str) -> AheadJob | None:
        """The job created ahead for ``name`` with this very query, handed over (None: create one)."""
        found = self._pending
        if found is None or found.name != name:
            return None
        if found.soql != soql:
            self.discard(name)
            return None
        self._pending = None
        self.handed[name] = self.handed.get(name, 0) + self._calls
        return found

    def discard(self, name: str | None = None) -> None:
        """Abort the pending job (only ``name``'s, when given): nothing will read its results."""
        found = self._pending
        if found is None or (name is not None and found.name != name):
            return
        self._pending = None
        if name is not None:
            self.handed[name] = self.handed.get(name, 0) + self._calls
        job_id = str((found.job or {}).get("id") or "")
        if job_id:
            BulkQueryApi(self.client, found.name).abort(job_id)
