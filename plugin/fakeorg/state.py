"""Mutable server state shared by request threads: sessions, API usage, request log, query cursors.

Every method takes the one lock; handlers never touch the fields directly.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .ids import sf_id
from .query import QueryResult

MAX_CURSORS = 1000


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered (tests assert on counts and paths)."""

    method: str
    path: str
    query_string: str
    status: int
    counted: bool


@dataclass
class Cursor:
    """A query result snapshot and the page size it was opened with."""

    result: QueryResult
    page_size: int


class ServerState:
    """Sessions, the API usage counter, the request log and open cursors."""

    def __init__(self, *, org_id: str, api_max: int, api_remaining: int) -> None:
        self._lock = threading.Lock()
        self._org_id = org_id
        self._tokens: set[str] = set()
        self.api_max = api_max
        self._used = max(0, api_max - api_remaining)
        self._initial_used = self._used
        self._log: list[LoggedRequest] = []
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._locator_seq = 0

    def issue_token(self) -> str:
        """A new session id shaped like Salesforce's: `<15-char org id>!<opaque>`."""
        token = f"{self._org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._tokens.add(token)
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def expire_sessions(self) -> None:
        """Invalidate every session (next call gets 401 INVALID_SESSION_ID)."""
        with self._lock:
            self._tokens.clear()

    def count_call(self) -> int | None:
        """Count one API call; None when the daily limit is already used up."""
        with self._lock:
            if self._used >= self.api_max:
                return None
            self._used += 1
            return self._used

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    @property
    def api_calls(self) -> int:
        """API calls counted since start (excludes the org.json starting usage)."""
        with self._lock:
            return self._used - self._initial_used

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def request_log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def open_cursor(self, cursor: Cursor) -> str:
        """Store a cursor and return its locator (an `01g` id, as Salesforce's look)."""
        with self._lock:
            self._locator_seq += 1
            locator = sf_id("01g", self._locator_seq)
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
            return locator

    def cursor(self, locator: str) -> Cursor | None:
        with self._lock:
            return self._cursors.get(locator)
