"""Running fault rules around every route of the fake (REST, logins, blobs, Bulk, replay).

Fired rules act in three places: before the route (delay, expire sessions, forget cursors),
instead of it (respond, login_fail: the first such rule wins) and on its response (slow or
dropped body, Bulk job state). Slow and dropped bodies are real at the socket level: a dropped
body sends its headers and part of the body, then shuts the TCP connection, so requests raises
ChunkedEncodingError exactly as with a real network failure.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request, Response

from . import soap
from .auth import bearer_token
from .errors import FaultRuleError
from .faultrules import (
    BULK_JOB_PATH,
    KNOWN_ERRORS,
    ArmedRule,
    BulkJobState,
    Delay,
    Drop,
    ExpireSession,
    FaultRule,
    InvalidateLocator,
    LoginFail,
    RateLimit,
    RequestFacts,
    Respond,
    SlowBody,
    parse_rule,
)
from .state import BulkJobOverride, ServerState

Dispatch = Callable[[Request], tuple[Response, bool]]

_SOBJECT_PATH = re.compile(r"^/services/data/v[^/]+/(?:tooling/)?sobjects/([^/]+)")
_FROM = re.compile(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_JSON = "application/json;charset=UTF-8"
_DEFAULT_JOB_ERROR = (
    "UNKNOWN_EXCEPTION: An unexpected error occurred. Please include this ErrorId if you contact support: "
    "1716368493-45613 (-1181747351)"
)


@dataclass(frozen=True)
class Outcome:
    """A response and what the log records about it."""

    response: Response
    counted: bool
    sobject: str | None
    fired: tuple[str, ...]
    deferred: tuple[FaultRule, ...] = ()  # body rules of a subrequest, for its composite's body


def request_facts(request: Request, jobs: Mapping[str, str] | None = None) -> RequestFacts:
    """Method, path, decoded query string, sObject and session id.

    The sObject comes from the path, the SOQL `q`, a Bulk job's query (creation), or `jobs`
    (job id -> sObject) for requests about an existing Bulk job.
    """
    query = unquote_plus(request.query_string.decode("latin-1"))
    sobject: str | None = None
    path_match = _SOBJECT_PATH.match(request.path)
    job_match = BULK_JOB_PATH.search(request.path)
    if path_match:
        sobject = path_match.group(1)
    elif job_match and job_match.group("job"):
        sobject = (jobs or {}).get(job_match.group("job"))
    else:
        soql = request.args.get("q")
        if soql is None and request.method == "POST" and BULK_JOB_PATH.search(request.path):
            body = request.get_json(silent=True, cache=True)
            soql = body.get("query") if isinstance(body, dict) else None
        found = _FROM.search(soql) if isinstance(soql, str) else None
        sobject = found.group(1) if found else None
    return RequestFacts(request.method.upper(), request.path, query, sobject, bearer_token(request))


class FaultInjector:
    """The rule list of one server; thread-safe. `add()` also takes a rule's JSON form."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._rules: list[ArmedRule] = []
        self._ids = itertools.count(1)
        self._jobs: dict[str, str] = {}  # Bulk job id -> sObject, learnt from job creations

    def add(self, rule: Mapping[str, Any] | FaultRule) -> str:
        """Validate and arm a rule; returns its id. `rate_limit` takes effect at once.

        Raises:
            FaultRuleError: the rule is invalid or its id is taken.
        """
        parsed = parse_rule(rule)
        with self._lock:
            rule_id = parsed.id or f"rule-{next(self._ids)}"
            if any(armed.id == rule_id for armed in self._rules):
                raise FaultRuleError(f"a fault rule with id {rule_id!r} exists; pick another id or DELETE it first")
            armed = ArmedRule(parsed, rule_id)
            self._rules.append(armed)
            if isinstance(parsed, RateLimit):
                self.state.exhaust_after(parsed.after)
                armed.fired = 1
        return rule_id

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = [armed for armed in self._rules if armed.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
        return removed

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()
            self._ids = itertools.count(1)

    def reset(self) -> None:
        """Remove every rule and forget the Bulk jobs seen."""
        self.clear()
        with self._lock:
            self._jobs.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Every rule with its `matched` and `fired` counters."""
        with self._lock:
            return [armed.describe() for armed in self._rules]

    def handle(self, request: Request, dispatch: Dispatch, *, inner: bool = False) -> Outcome:
        """Run the route under the rules that fire on this request.

        ``inner``: a Composite subrequest, which has no connection of its own: a slow or dropped
        body aimed at it is returned in ``Outcome.deferred`` for the composite's body (``shape_body``).
        """
        with self._lock:
            jobs = dict(self._jobs)
        facts = request_facts(request, jobs)
        with self._lock:
            fired = [(armed.id, armed.rule) for armed in self._rules if armed.tick(facts)]
        replacement: Response | None = None
        for _, rule in fired:
            if isinstance(rule, Delay):
                self.state.pause(rule.seconds)
            elif isinstance(rule, ExpireSession):
                if rule.scope == "all":
                    self.state.expire_sessions()
                else:
                    self.state.expire_token(facts.token)
            elif isinstance(rule, InvalidateLocator):
                self.state.drop_cursors()
            elif isinstance(rule, Respond | LoginFail) and replacement is None:
                replacement = _respond(rule) if isinstance(rule, Respond) else _login_fail(rule, facts)
        if replacement is not None:
            response, counted = replacement, False
        else:
            response, counted = dispatch(request)
            self._learn_job(facts, response)
        body_rules: list[FaultRule] = []
        for _, rule in fired:
            if isinstance(rule, BulkJobState):
                self._override_job(rule, facts, response)
            elif isinstance(rule, SlowBody | Drop):
                body_rules.append(rule)
        deferred: tuple[FaultRule, ...] = ()
        if inner:
            deferred = tuple(body_rules)
        else:
            self.shape_body(response, request, body_rules)
        return Outcome(response, counted, facts.sobject, tuple(rule_id for rule_id, _ in fired), deferred)

    def shape_body(self, response: Response, request: Request, rules: Iterable[FaultRule]) -> None:
        """Slow down or drop ``response``'s body on ``request``'s connection, as ``rules`` say."""
        for rule in rules:
            if isinstance(rule, SlowBody):
                _replace_body(response, self._slow(response.iter_encoded(), rule))
            elif isinstance(rule, Drop):
                _drop(response, request, rule)

    def _learn_job(self, facts: RequestFacts, response: Response) -> None:
        """Remember which sObject a newly created Bulk job queries, so later rules can match it."""
        job_id = _job_id(facts, response) if facts.method == "POST" and facts.sobject else None
        if job_id is not None and facts.sobject is not None:
            with self._lock:
                self._jobs[job_id] = facts.sobject

    def _override_job(self, rule: BulkJobState, facts: RequestFacts, response: Response) -> None:
        job_id = _job_id(facts, response)
        if job_id is not None:
            message = rule.error_message or (_DEFAULT_JOB_ERROR if rule.state == "Failed" else None)
            self.state.override_bulk_job(job_id, BulkJobOverride(rule.state, message))

    def _slow(self, chunks: Iterable[bytes], rule: SlowBody) -> Iterator[bytes]:
        first = True
        for chunk in chunks:
            for start in range(0, len(chunk), rule.chunk_bytes):
                if not first and self.state.pause(rule.seconds):
                    return
                first = False
                yield chunk[start : start + rule.chunk_bytes]


def _job_id(facts: RequestFacts, response: Response) -> str | None:
    """The Bulk job a request names in its path, or the one its (JSON) answer created."""
    found = BULK_JOB_PATH.search(facts.path)
    if found is None:
        return None
    if found.group("job"):
        return found.group("job")
    if response.is_streamed or response.status_code >= 300:
        return None
    body = response.get_json(force=True, silent=True)
    job_id = body.get("id") if isinstance(body, dict) else None
    return job_id if isinstance(job_id, str) else None


def _respond(rule: Respond) -> Response:
    if rule.error_code:
        status, message = KNOWN_ERRORS.get(rule.error_code, (rule.status or 400, rule.error_code))
        body = json.dumps([{"message": rule.message or message, "errorCode": rule.error_code}])
        response = Response(body, rule.status or status, content_type=_JSON)
    elif rule.body is not None:
        response = Response(rule.body, rule.status, content_type=rule.content_type or "text/plain;charset=UTF-8")
    else:
        status = rule.status or 503
        title = HTTP_STATUS_CODES.get(status, "Error")
        page = f"<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
        response = Response(page, status, content_type=rule.content_type or "text/html;charset=UTF-8")
    if rule.retry_after is not None:
        response.headers["Retry-After"] = str(rule.retry_after)
    return response


def _login_fail(rule: LoginFail, facts: RequestFacts) -> Response:
    if "/oauth2/" in facts.path:
        body = {"error": rule.code or "invalid_grant", "error_description": rule.message or "authentication failure"}
        return Response(json.dumps(body), 400, content_type=_JSON)
    answer = soap.login_fault(rule.code or "INVALID_LOGIN", rule.message)
    return Response(answer.body, answer.status, content_type="text/xml;charset=UTF-8")


def _replace_body(response: Response, chunks: Iterator[bytes]) -> None:
    # The Content-Length the route set stays: a client then knows the body came up short.
    response.response = chunks
    response.direct_passthrough = True


def _drop(response: Response, request: Request, rule: Drop) -> None:
    sock = request.environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        raise FaultRuleError("drop rules need a real connection (serve the fake with FakeOrgServer)")
    limit = rule.after_bytes
    if limit is None and response.content_length is not None:
        limit = response.content_length // 2
    _replace_body(response, _cut(response.iter_encoded(), sock, limit, before_headers=rule.before_headers))


def _cut(chunks: Iterator[bytes], sock: socket.socket, limit: int | None, *, before_headers: bool) -> Iterator[bytes]:
    """Yield at most `limit` bytes (None: the first chunk), then shut the connection down."""
    try:
        if not before_headers:
            yield b""  # makes werkzeug send the status line and headers
            sent = 0
            for chunk in chunks:
                piece = chunk if limit is None else chunk[: max(0, limit - sent)]
                if piece:
                    yield piece
                    sent += len(piece)
                if limit is None or sent >= limit:
                    break
        sock.shutdown(socket.SHUT_RDWR)
        # werkzeug treats ConnectionError as "client went away": no 500 page, no traceback.
        raise ConnectionAbortedError("fault rule: connection dropped")
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
