"""Mutable server state shared by request threads: sessions, API usage, request log, query cursors,
logins, misses and the Bulk job overrides that fault rules set.

Every method takes the one lock; handlers never touch the fields directly.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .ids import sf_id
from .query import QueryResult

MAX_CURSORS = 1000
MAX_MISSES = 1000

BulkState = Literal["Failed", "Aborted", "InProgress"]


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered (tests assert on counts and paths).

    `seq` numbers entries from 1 in arrival order; `faults` names the fault rules that acted on it.
    `composite`: a subrequest of a POST .../composite (logged as it is answered, before the
    composite itself; never an API call of its own).
    """

    method: str
    path: str
    query_string: str
    status: int
    counted: bool
    seq: int = 0
    sobject: str | None = None
    faults: tuple[str, ...] = ()
    composite: bool = False


@dataclass(frozen=True)
class BulkJobOverride:
    """What a fault rule imposes on one Bulk 2.0 job: the state to report instead of the real one.

    The Bulk module asks `ServerState.bulk_job_override(job_id)` whenever it renders a job:
    `Failed` (with `error_message`) and `Aborted` end the job, `InProgress` keeps it running forever.
    """

    state: BulkState
    error_message: str | None = None


@dataclass
class Cursor:
    """A query result snapshot, the page size it was opened with and whether it is a queryAll."""

    result: QueryResult
    page_size: int
    include_deleted: bool = False


class ServerState:
    """Sessions, the API usage counter, the request log, open cursors, logins and misses."""

    def __init__(self, *, org_id: str, api_max: int, api_remaining: int) -> None:
        self._lock = threading.Lock()
        self._org_id = org_id
        self._tokens: set[str] = set()
        self._kept_tokens: set[str] = set()
        self.api_max = api_max
        self._initial_used = max(0, api_max - api_remaining)
        self._used = self._initial_used
        self._calls = 0
        self._logins = 0
        self._log: list[LoggedRequest] = []
        self._misses: list[str] = []
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._locator_seq = 0
        self._bulk: dict[str, BulkJobOverride] = {}
        self._reset_hooks: list[Callable[[], None]] = []
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()
        self.stopping = threading.Event()

    # --- sessions --------------------------------------------------------------------------

    def issue_token(self, *, keep_on_reset: bool = False) -> str:
        """A new session id shaped like Salesforce's: `<15-char org id>!<opaque>`.

        `keep_on_reset` marks the token printed at start-up: `reset()` makes it valid again.
        """
        token = f"{self._org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._tokens.add(token)
            if keep_on_reset:
                self._kept_tokens.add(token)
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def expire_sessions(self) -> None:
        """Invalidate every session (next call gets 401 INVALID_SESSION_ID)."""
        with self._lock:
            self._tokens.clear()

    def expire_token(self, token: str) -> None:
        """Invalidate one session id."""
        with self._lock:
            self._tokens.discard(token)

    def count_login(self) -> None:
        """A successful login (SOAP or OAuth); logins are not API calls."""
        with self._lock:
            self._logins += 1

    @property
    def logins(self) -> int:
        with self._lock:
            return self._logins

    # --- API usage -------------------------------------------------------------------------

    def count_call(self) -> int | None:
        """Count one API call; None when the daily limit is already used up."""
        with self._lock:
            if self._used >= self.api_max:
                return None
            self._used += 1
            self._calls += 1
            return self._used

    def exhaust_after(self, calls: int) -> None:
        """Leave only `calls` API calls in the daily limit (REQUEST_LIMIT_EXCEEDED afterwards)."""
        with self._lock:
            self._used = max(self._used, self.api_max - calls)

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    @property
    def api_calls(self) -> int:
        """API calls counted since start or the last reset (excludes the org.json starting usage)."""
        with self._lock:
            return self._calls

    # --- request log and misses ------------------------------------------------------------

    def log(self, entry: LoggedRequest) -> LoggedRequest:
        """Append an entry, numbering it; returns the numbered entry."""
        with self._lock:
            numbered = dataclasses.replace(entry, seq=len(self._log) + 1)
            self._log.append(numbered)
            return numbered

    def request_log(self, *, after: int = 0, limit: int | None = None) -> list[LoggedRequest]:
        """Entries with `seq > after`, at most `limit` of them."""
        with self._lock:
            entries = self._log[after:]
        return entries if limit is None else entries[:limit]

    def miss(self, description: str) -> None:
        """Record a request nothing could answer (unknown path, or unrecorded in replay mode)."""
        with self._lock:
            self._misses.append(description)
            del self._misses[:-MAX_MISSES]

    @property
    def misses(self) -> list[str]:
        with self._lock:
            return list(self._misses)

    # --- requests in flight (a gauge: tests prove a client's concurrency bound with it) -----

    def enter(self, kinds: tuple[str, ...]) -> None:
        """A request of these kinds (e.g. ``requests``, ``blobs``) started; raises each gauge's peak."""
        with self._lock:
            for kind in kinds:
                self._in_flight[kind] += 1
                self._max_in_flight[kind] = max(self._max_in_flight[kind], self._in_flight[kind])

    def leave(self, kinds: tuple[str, ...]) -> None:
        """The request's answer was sent (or its connection dropped)."""
        with self._lock:
            for kind in kinds:
                self._in_flight[kind] -= 1

    def in_flight(self) -> dict[str, dict[str, int]]:
        """Per kind: requests being answered now, and the most there ever were at once."""
        with self._lock:
            kinds = sorted(set(self._in_flight) | set(self._max_in_flight))
            return {k: {"now": self._in_flight[k], "max": self._max_in_flight[k]} for k in kinds}

    # --- cursors ---------------------------------------------------------------------------

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

    def drop_cursors(self) -> int:
        """Forget every open cursor (their locators give INVALID_QUERY_LOCATOR); returns how many."""
        with self._lock:
            count = len(self._cursors)
            self._cursors.clear()
            return count

    @property
    def open_cursors(self) -> int:
        with self._lock:
            return len(self._cursors)

    # --- Bulk job overrides (the seam the Bulk module reads) -------------------------------

    def override_bulk_job(self, job_id: str, override: BulkJobOverride) -> None:
        with self._lock:
            self._bulk[job_id] = override

    def bulk_job_override(self, job_id: str) -> BulkJobOverride | None:
        """The state a fault rule forces on this Bulk 2.0 job, or None to let it run normally."""
        with self._lock:
            return self._bulk.get(job_id)

    def bulk_overrides(self) -> dict[str, BulkJobOverride]:
        with self._lock:
            return dict(self._bulk)

    # --- waiting and reset -----------------------------------------------------------------

    def pause(self, seconds: float) -> bool:
        """Sleep for a fault delay; returns early (True) when the server is stopping."""
        return self.stopping.wait(seconds)

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Run `hook` on every `reset()` (modules with their own state, such as Bulk jobs)."""
        with self._lock:
            self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Back to the just-started state: start-up token valid again, usage, log, cursors cleared."""
        with self._lock:
            self._tokens = set(self._kept_tokens)
            self._used = self._initial_used
            self._calls = 0
            self._logins = 0
            self._log.clear()
            self._misses.clear()
            self._cursors.clear()
            self._bulk.clear()
            # Requests still being answered stay counted; only the peaks start again.
            self._max_in_flight = Counter({k: v for k, v in self._in_flight.items() if v})
            hooks = list(self._reset_hooks)
        for hook in hooks:
            hook()
