"""The describes of a backup's planned objects, 25 to an API call, fetched as the export reaches them.

When an object's turn comes and its describe is not here yet, one ``OrgClient.describe_many``
call (a Composite request) fetches it together with the next objects of the plan that are not
described yet, up to 25, leaving out the objects a resume reuses (their describe is on disk from
the attempt that exported them: never described again). Fetching at an object's turn keeps the
exporter's stop checks (cancel, lost lease) between batches, and an object whose describe failed
fails at its own turn, with the error its own describe call would have raised, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from plugin.salesforce.client import RawBody
from plugin.salesforce.composite import MAX_SUBREQUESTS
from plugin.salesforce.errors import SalesforceError


class Describing(Protocol):
    """What this needs of an ``OrgClient``."""

    @property
    def api_calls(self) -> int: ...

    def describe_many(self, names: Sequence[str]) -> Mapping[str, RawBody | SalesforceError]: ...


class PlannedDescribes:
    """Describes of ``order`` (the plan's objects, in export order) for objects ``wanted`` says need one."""

    def __init__(self, client: Describing, order: Sequence[str], *, wanted: Callable[[str], bool]) -> None:
        self._client = client
        self._order = list(order)
        self._position = {name: n for n, name in enumerate(self._order)}
        self._wanted = wanted
        self._asked: set[str] = set()
        self._ready: dict[str, RawBody | SalesforceError] = {}
        self.calls = 0  # API calls the describes cost (Composite requests, and direct describes)
        self.batches = 0

    def take(self, name: str) -> RawBody:
        """``name``'s describe (fetched with the next ones when it is not here yet); each is taken once.

        Raises:
            SalesforceError: what describing ``name`` raised; or the Composite request's own failure.
        """
        if name not in self._ready:
            self._fetch(name)
        found = self._ready.pop(name)
        if isinstance(found, SalesforceError):
            raise found
        return found

    def peek(self, name: str) -> RawBody | None:
        """``name``'s describe when it is here already (fetched with an earlier one), else None: no call."""
        found = self._ready.get(name)
        return found if isinstance(found, RawBody) else None

    def _fetch(self, name: str) -> None:
        start = self._position.get(name, len(self._order))
        later = (n for n in self._order[start + 1 :] if n not in self._asked and self._wanted(n))
        batch = [name]
        for other in later:
            if len(batch) >= MAX_SUBREQUESTS:
                break
            batch.append(other)
        self._asked.update(batch)
        before = self._client.api_calls
        try:
            found = self._client.describe_many(batch)
        finally:
            self.calls += self._client.api_calls - before
            self.batches += 1
        self._ready.update(found)


def save_describe(path: Path, describe: RawBody) -> None:
    """Describes are saved exactly as Salesforce sent them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(describe.raw)
    tmp.replace(path)
