"""The fake's own control endpoints under /__fake__/, for tests that run the product (or the fake)
in another process. They need no session, are never counted or logged, and speak plain JSON:

    GET    /__fake__/faults          the rules, with matched/fired counters
    POST   /__fake__/faults          add one rule (object) or several (list) -> {"ids": [...]}
    DELETE /__fake__/faults[/<id>]   remove every rule, or one
    POST   /__fake__/reset           rules, log, usage, sessions, cursors, Bulk jobs back to the start
    GET    /__fake__/log?after=N&limit=M   request log entries with seq > N
    GET    /__fake__/state           API calls, usage (as /limits and Sforce-Limit-Info show it),
                                     logins, requests by status, misses, open cursors, Bulk overrides,
                                     response cache hits and misses (null when off)
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from .cache import ResponseCache
from .errors import FaultRuleError
from .faults import FaultInjector
from .state import ServerState

PREFIX = "/__fake__/"


def is_control(request: Request) -> bool:
    return request.path.startswith(PREFIX)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class Control:
    """Answers /__fake__/ requests for one server; `reset` is the server's full reset."""

    def __init__(
        self,
        state: ServerState,
        faults: FaultInjector,
        reset: Callable[[], None],
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.state = state
        self.faults = faults
        self.reset = reset
        self.cache = cache

    def __call__(self, request: Request) -> Response:
        name, _, rest = request.path[len(PREFIX) :].partition("/")
        route = (request.method, name, bool(rest))
        if route == ("GET", "faults", False):
            return _json({"rules": self.faults.rules()})
        if route == ("POST", "faults", False):
            return self._add(request)
        if request.method == "DELETE" and name == "faults":
            if rest:
                return _json({"removed": rest}) if self.faults.remove(rest) else _error(404, f"no rule {rest!r}")
            self.faults.clear()
            return _json({"removed": "all"})
        if route == ("POST", "reset", False):
            self.reset()
            return _json({"reset": True})
        if route == ("GET", "log", False):
            return self._log(request)
        if route == ("GET", "state", False):
            return _json(self.snapshot())
        return _error(404, f"unknown control endpoint {request.method} {request.path}; see docs/fake-org.md")

    def _add(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc}); POST a rule object or a list of them")
        rules = body if isinstance(body, list) else [body]
        ids: list[str] = []
        try:
            for rule in rules:
                ids.append(self.faults.add(rule))
        except FaultRuleError as exc:
            for rule_id in ids:  # all or nothing: a half-installed list would confuse the test
                self.faults.remove(rule_id)
            return _error(400, str(exc))
        return _json({"ids": ids}, 201)

    def _log(self, request: Request) -> Response:
        try:
            after = int(request.args.get("after", "0"))
            limit = int(request.args["limit"]) if "limit" in request.args else None
        except ValueError:
            return _error(400, "after and limit must be integers")
        entries = self.state.request_log(after=after, limit=limit)
        return _json(
            {"entries": [dataclasses.asdict(e) for e in entries], "last": entries[-1].seq if entries else after}
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything a test asserts on, in one JSON object (also `FakeOrgServer.snapshot()`)."""
        state = self.state
        everything = state.request_log()
        log = [e for e in everything if not e.composite]  # requests on the wire
        used = state.used
        return {
            "api_calls": state.api_calls,
            "api_usage": {"used": used, "max": state.api_max, "remaining": max(0, state.api_max - used)},
            "logins": state.logins,
            "requests": len(log),
            "subrequests": len(everything) - len(log),
            "by_status": dict(sorted(Counter(str(e.status) for e in log).items())),
            "faults_fired": sum(len(e.faults) for e in everything),
            "misses": state.misses,
            "open_cursors": state.open_cursors,
            "bulk_overrides": {k: dataclasses.asdict(v) for k, v in state.bulk_overrides().items()},
            "in_flight": state.in_flight(),
            "response_cache": self.cache.stats() if self.cache is not None else None,
        }
