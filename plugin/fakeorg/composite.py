"""POST .../composite: up to 25 subrequests in one API call, each answered as if it came alone.

The request body is ``{"allOrNone": bool, "compositeRequest": [{"method", "url", "referenceId",
"httpHeaders"?}, ...]}``; the answer is HTTP 200 ``{"compositeResponse": [{"body", "httpHeaders",
"httpStatusCode", "referenceId"}, ...]}`` in request order. The app runs every subrequest through
its fault rules and routes (``Subrequests``), so quirks, hidden fields, error bodies and rules
aimed at a subrequest's path behave as for the direct request; each body is spliced in byte for
byte, so a client can keep exactly what the direct call would have sent. Subrequests are not API
calls: the composite request is one (Salesforce: "the entire series of requests counts as a single
call toward your API limits").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from . import jsonlit
from .errors import ApiError

MAX_SUBREQUESTS = 25
# Salesforce's answer to more than 25 (reported verbatim in guardian/support-service-lambdas#766;
# the HTTP status of the top-level answer is not in that report: 400 here, *unconfirmed*).
TOO_MANY = "The request can’t contain more than 25 operations."
# Salesforce: "Up to 5 of these subrequests can be sObject Collections or query operations, including
# Query and QueryAll requests." (REST guide, Composite). The wording of the refusal is *unconfirmed*.
MAX_QUERIES = 5
TOO_MANY_QUERIES = "The request can’t contain more than 5 query or sObject Collections operations."
_QUERY_PATH = re.compile(r"/services/data/v[0-9.]+/(?:query|queryAll|composite/sobjects)(?:/|$)")
# Salesforce: "If allOrNone is set to true ... and a subrequest returns an error, all other
# subrequests return the 400 HTTP status code."
HALTED = ApiError(
    400,
    "PROCESSING_HALTED",
    "The transaction was rolled back since another operation in the same transaction failed.",
)
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")  # "letters, numbers, and underscores" only
_INHERITED = ("accept", "authorization", "content-type")  # from the top-level request, never set per subrequest
_OMITTED_HEADERS = {"content-length", "content-type", "sforce-limit-info"}  # not per subresponse
_JSON = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class Subrequest:
    method: str
    url: str
    reference_id: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    """What one subrequest got: status, headers, the exact body bytes (JSON) and the rules that
    shape the top-level body (a drop or slow body aimed at the subrequest's path)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    deferred: tuple[Any, ...] = ()


def parse(data: bytes) -> tuple[bool, list[Subrequest]]:
    """The allOrNone flag and the subrequests of a composite body.

    Raises:
        ApiError: 400 JSON_PARSER_ERROR naming what is malformed (the fake's wording).
        TooManyError: more than 25 subrequests.
    """
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    all_or_none = body.get("allOrNone", False)
    items = body.get("compositeRequest")
    if not isinstance(all_or_none, bool):
        raise ApiError(400, "JSON_PARSER_ERROR", "allOrNone must be true or false")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list of subrequests")
    if len(items) > MAX_SUBREQUESTS:
        raise TooManyError()
    subs = [_subrequest(n, item) for n, item in enumerate(items)]
    if sum(1 for sub in subs if _QUERY_PATH.match(urlsplit(sub.url).path)) > MAX_QUERIES:
        raise TooManyError(TOO_MANY_QUERIES)
    seen: set[str] = set()
    for sub in subs:
        if sub.reference_id in seen:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Duplicate referenceId {sub.reference_id!r}")
        seen.add(sub.reference_id)
    return all_or_none, subs


class TooManyError(Exception):
    """More than 25 subrequests, or more than 5 queries: Salesforce answers with one compositeResponse entry."""

    def __init__(self, message: str = TOO_MANY) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> Response:
        entry = {
            "body": [{"errorCode": "LIMIT_EXCEEDED", "message": self.message}],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": None,
        }
        return Response(jsonlit.dumps_bytes({"compositeResponse": [entry]}), 400, content_type=_JSON)


def _subrequest(n: int, item: Any) -> Subrequest:
    where = f"compositeRequest[{n}]"
    if not isinstance(item, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where} must be a JSON object")
    method, url, ref = item.get("method"), item.get("url"), item.get("referenceId")
    headers = item.get("httpHeaders") or {}
    if not isinstance(method, str) or method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where}.method must be GET, POST, PATCH, PUT or DELETE")
    if not isinstance(url, str) or not url.startswith("/services/data/"):
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where}.url must be a path starting /services/data/")
    if not isinstance(ref, str) or _REFERENCE_ID.fullmatch(ref) is None:
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where}.referenceId must be letters, numbers and underscores only")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where}.httpHeaders must map header names to strings")
    inherited = sorted(h for h in headers if h.lower() in _INHERITED)
    if inherited:
        raise ApiError(
            400, "INVALID_HEADER_TYPE", f"{where}: {', '.join(inherited)} come from the composite request itself"
        )
    if "@{" in url or "body" in item:
        raise ApiError(400, "JSON_PARSER_ERROR", f"{where}: the fake serves reads only, without references")
    return Subrequest(method, url, ref, dict(headers))


def sub_request(parent: Request, sub: Subrequest) -> Request:
    """The subrequest as a request of its own: its method and URL, the parent's session and host."""
    parts = urlsplit(sub.url)
    headers = {"Authorization": parent.headers.get("Authorization", ""), **sub.headers}
    builder = EnvironBuilder(
        path=parts.path,
        query_string=parts.query,
        method=sub.method,
        headers=list(headers.items()),
        base_url=parent.host_url,
    )
    return Request(builder.get_environ())


def answer_of(response: Response, deferred: Iterable[Any] = ()) -> Answer:
    """A route's response as a subresponse: JSON bodies as sent, anything else as a JSON string."""
    data = b"".join(response.iter_encoded())  # also a streamed (cached) query page
    if not data:
        body = b"null"
    elif response.mimetype == "application/json" and _is_json(data):
        body = data
    else:
        body = jsonlit.dumps_bytes(data.decode("utf-8", "replace"))
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _OMITTED_HEADERS}
    return Answer(response.status_code, headers, body, tuple(deferred))


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def halted(answer: Answer) -> Answer:
    """What allOrNone makes of the other subrequests once one failed."""
    return Answer(HALTED.status, {}, jsonlit.dumps_bytes(HALTED.body()), answer.deferred)


def serve(parent: Request, run: Callable[[Request], Answer]) -> tuple[Response, list[Any]]:
    """The composite answer, and the body rules its subrequests deferred to it.

    Raises:
        ApiError: a malformed body (400).
    """
    try:
        all_or_none, subs = parse(parent.get_data())
    except TooManyError as exc:
        return exc.response(), []
    answers = [run(sub_request(parent, sub)) for sub in subs]
    if all_or_none and any(a.status >= 400 for a in answers):
        answers = [a if a.status >= 400 else halted(a) for a in answers]
    pieces = [
        b'{"body":'
        + a.body
        + b',"httpHeaders":'
        + jsonlit.dumps_bytes(dict(a.headers))
        + b',"httpStatusCode":'
        + str(a.status).encode()
        + b',"referenceId":'
        + jsonlit.dumps_bytes(sub.reference_id)
        + b"}"
        for sub, a in zip(subs, answers, strict=True)
    ]
    body = b'{"compositeResponse":[' + b",".join(pieces) + b"]}"
    return Response(body, 200, content_type=_JSON), [rule for a in answers for rule in a.deferred]
