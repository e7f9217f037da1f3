"""The fake org's WSGI app: Salesforce REST routes over a loaded `FakeOrg`.

Responses follow the real wire format (error lists, query pages with path-only nextRecordsUrl,
Sforce-Limit-Info on authenticated calls) so unmodified simple-salesforce works against it.
Every request passes the fault rules (faults.py) and is logged; /__fake__/ is the control API
(control.py); with cassettes loaded, recorded answers (replay.py) replace the org's routes.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import composite, control, jsonlit, oauth, replication
from .auth import Credentials, bearer_token, soap_login
from .bulk import DAILY_JOBS, BulkJobs
from .cache import ResponseCache
from .describes import with_version
from .errors import ApiError
from .faults import FaultInjector
from .org import FakeOrg
from .query import attributes, field_value, project, run_query
from .replay import Replayer
from .state import Cursor, LoggedRequest, ServerState
from .table import SObjectTable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

API_VERSIONS = tuple(f"{v}.0" for v in range(55, 64))
DEFAULT_BATCH = 2000
_JSON = "application/json;charset=UTF-8"
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
# GET .../sobjects/<o>/<id>/<field>: a file body (the in-flight gauge counts these apart).
_BLOB_PATH = re.compile(r"^/services/data/v[^/]+/sobjects/[^/]+/(?!describe/)[^/]+/[^/]+/?$")
_V = "/services/data/<version>"
_RULES = Map(
    [
        Rule("/services/data", endpoint="versions", methods=["GET"]),
        Rule(_V, endpoint="resources", methods=["GET"]),
        Rule(f"{_V}/sobjects", endpoint="describe_global", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>", endpoint="sobject", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/describe", endpoint="describe", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/<record_id>", endpoint="record", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/<record_id>/<field>", endpoint="blob", methods=["GET"]),
        Rule(f"{_V}/query", endpoint="query", methods=["GET"]),
        Rule(f"{_V}/queryAll", endpoint="query_all", methods=["GET"]),
        Rule(f"{_V}/query/<locator>", endpoint="query_more", methods=["GET"]),
        Rule(f"{_V}/queryAll/<locator>", endpoint="query_more", methods=["GET"]),
        Rule(f"{_V}/limits", endpoint="limits", methods=["GET"]),
        Rule(f"{_V}/composite", endpoint="composite", methods=["POST"]),
        Rule("/services/Soap/u/<version>", endpoint="soap_login", methods=["POST"]),
        Rule("/services/oauth2/token", endpoint="oauth_token", methods=["POST"]),
        # data: replication, record counts, Bulk API 2.0 query jobs
        Rule(f"{_V}/sobjects/<sobject>/deleted", endpoint="deleted", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/updated", endpoint="updated", methods=["GET"]),
        Rule(f"{_V}/limits/recordCount", endpoint="record_count", methods=["GET"]),
        Rule(f"{_V}/jobs/query", endpoint="bulk_jobs", methods=["GET", "POST"]),
        Rule(f"{_V}/jobs/query/<job_id>", endpoint="bulk_job", methods=["GET", "PATCH", "DELETE"]),
        Rule(f"{_V}/jobs/query/<job_id>/results", endpoint="bulk_results", methods=["GET"]),
    ],
    merge_slashes=False,
)
_UNAUTHENTICATED = frozenset({"versions", "soap_login", "oauth_token"})
# What a Composite subrequest may ask for (Salesforce: sObject resources except blobs, query, queryAll).
_IN_COMPOSITE = frozenset(
    {"describe_global", "sobject", "describe", "record", "query", "query_all", "query_more", "deleted", "updated"}
)
# Salesforce: "the maximum length for the combined URI and headers is 16,384 bytes"; a longer URI
# gets 414 URI Too Long, a longer URI + headers 431 (help article 000386264). Front-end pages, not
# API error lists, and not API calls.
MAX_URI_AND_HEADERS = 16_384
_NOT_FOUND = ApiError(404, "NOT_FOUND", "The requested resource does not exist")
# The org as the current request's API version and user see it (quirks: hidden fields).
_REQUEST_ORG: contextvars.ContextVar[FakeOrg] = contextvars.ContextVar("fake_org_request_org")


class FakeOrgApp:
    """WSGI callable; `instance_url` is set by the server once the port is known."""

    def __init__(
        self,
        org: FakeOrg,
        state: ServerState,
        credentials: Credentials,
        *,
        page_size: int | None = None,
        replay: Replayer | None = None,
    ) -> None:
        self._org = org
        self.state = state
        self.credentials = credentials
        self.page_size = page_size
        self.replay = replay
        self.instance_url = ""
        self.faults = FaultInjector(state)
        self.cache = ResponseCache.for_org(org.root, org.settings)
        self.control = control.Control(state, self.faults, self.reset, cache=self.cache)
        self.bulk = BulkJobs.for_org(org, credentials.user_id, overrides=state.bulk_job_override, cache=self.cache)
        state.on_reset(self.bulk.reset)
        self._handlers: dict[str, Callable[..., Response]] = {
            name: getattr(self, f"_{name}") for name in {r.endpoint for r in _RULES.iter_rules()}
        }

    @property
    def org(self) -> FakeOrg:
        """Inside a versioned request, the org as that version and user see it; else the loaded org."""
        return _REQUEST_ORG.get(self._org)

    def reset(self) -> None:
        """Back to the just-started server: no fault rules, fresh state (and Bulk jobs, a reset hook),
        replay from the start."""
        self.faults.reset()
        self.state.reset()
        if self.replay is not None:
            self.replay.reset()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if control.is_control(request):
            return self.control(request)(environ, start_response)
        too_long = _oversized(request, environ)
        if too_long is not None:
            self.state.log(
                LoggedRequest(request.method, request.path, request.query_string.decode(), too_long[0], False)
            )
            return _page(*too_long)(environ, start_response)
        kinds = ("requests", "blobs") if _BLOB_PATH.match(request.path) else ("requests",)
        self.state.enter(kinds)
        try:
            outcome = self.faults.handle(request, self._route)
            entry = LoggedRequest(
                request.method,
                request.path,
                request.query_string.decode(),
                outcome.response.status_code,
                outcome.counted,
                sobject=outcome.sobject,
                faults=outcome.fired,
            )
            self.state.log(entry)
            length = outcome.response.content_length
            body = outcome.response(environ, start_response)
        except BaseException:
            self.state.leave(kinds)
            raise
        return _gauged(body, lambda: self.state.leave(kinds), length)

    def _route(self, request: Request) -> tuple[Response, bool]:
        if self.replay is not None:
            return self.replay.dispatch(request, self.state, self.instance_url)
        return self._dispatch(request)

    def _dispatch(self, request: Request, *, inner: bool = False) -> tuple[Response, bool]:
        """Route one request; ``inner``: a Composite subrequest (its composite is the API call)."""
        path = request.path.rstrip("/") or "/"  # Salesforce accepts both `query` and `query/`
        try:
            endpoint, matched = _RULES.bind_to_environ(request.environ).match(path, method=request.method)
        except NotFound:
            self.state.miss(f"{request.method} {request.path}")
            return _error(_NOT_FOUND), False
        except MethodNotAllowed as exc:
            allowed = ",".join(exc.valid_methods or ())
            message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
            return _error(ApiError(405, "METHOD_NOT_ALLOWED", message)), False
        handler, args = self._handlers[str(endpoint)], dict(matched)
        if inner and endpoint not in _IN_COMPOSITE:
            message = (
                f"{request.path}: not available in a Composite subrequest (sObject, query and queryAll resources are)"
            )
            return _error(ApiError(400, "INVALID_API_INPUT", message)), False
        if endpoint in _UNAUTHENTICATED:
            return handler(request, **args), False
        if not self.state.is_valid(bearer_token(request)):
            return _error(ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")), False
        used = self.state.used if inner else self.state.count_call()
        if used is None:
            response = _error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        else:
            try:
                if args.get("version") not in {f"v{v}" for v in API_VERSIONS}:
                    raise _NOT_FOUND
                args["version"] = args["version"][1:]
                token = _REQUEST_ORG.set(self._org.quirks.view(self._org, args["version"]))
                try:
                    response = handler(request, **args)
                finally:
                    _REQUEST_ORG.reset(token)
            except ApiError as exc:
                response = _error(exc)
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.state.used}/{self.state.api_max}"
        return response, used is not None and not inner

    # --- unauthenticated -------------------------------------------------------------------

    def _versions(self, request: Request) -> Response:
        return _json([{"label": f"API v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS])

    def _soap_login(self, request: Request, version: str) -> Response:
        answer = soap_login(
            request.get_data(),
            creds=self.credentials,
            state=self.state,
            instance_url=self.instance_url,
            version=version,
            org_id=self.org.org_id,
        )
        return Response(answer.body, answer.status, content_type="text/xml;charset=UTF-8")

    def _oauth_token(self, request: Request) -> Response:
        answer = oauth.token(
            request.form,
            request.headers.get("Authorization", ""),
            creds=self.credentials,
            state=self.state,
            instance_url=self.instance_url,
            org_id=self.org.org_id,
        )
        return _json(answer.body, answer.status)

    # --- REST ------------------------------------------------------------------------------

    def _resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return _json({name: f"{base}/{name}" for name in names})

    def _composite(self, request: Request, version: str) -> Response:
        """Up to 25 subrequests, each through the fault rules and routes as if it came alone (composite.py)."""

        def run(sub: Request) -> composite.Answer:
            outcome = self.faults.handle(sub, lambda r: self._dispatch(r, inner=True), inner=True)
            status = outcome.response.status_code
            query = sub.query_string.decode()
            entry = LoggedRequest(
                sub.method,
                sub.path,
                query,
                status,
                False,
                sobject=outcome.sobject,
                faults=outcome.fired,
                composite=True,
            )
            self.state.log(entry)
            return composite.answer_of(outcome.response, outcome.deferred)

        response, deferred = composite.serve(request, run)
        self.faults.shape_body(response, request, deferred)
        return response

    def _describe_global(self, request: Request, version: str) -> Response:
        return _json(with_version(self.org.global_body, version))

    def _table(self, sobject: str) -> SObjectTable:
        table = self.org.table(sobject)
        if table is None:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
        return table

    def _sobject(self, request: Request, version: str, sobject: str) -> Response:
        table = self._table(sobject)
        entry = next(e for e in self.org.global_body["sobjects"] if e["name"].lower() == table.name.lower())
        return _json(with_version({"objectDescribe": entry, "recentItems": []}, version))

    def _describe(self, request: Request, version: str, sobject: str) -> Response:
        return _json(with_version(self._table(sobject).describe, version))

    def _record(self, request: Request, version: str, sobject: str, record_id: str) -> Response:
        table = self._table(sobject)
        record = table.get(record_id)
        if record is None:
            raise _NOT_FOUND
        wanted = {f.strip().lower() for f in request.args.get("fields", "").split(",") if f.strip()}
        body: dict[str, Any] = {"attributes": attributes(table.name, record.get("Id"), version)}
        for fld in table.fields():
            if not wanted or fld.name.lower() in wanted:
                body[fld.name] = field_value(table, table.name, record, fld, version)
        return _json(body)

    def _blob(self, request: Request, version: str, sobject: str, record_id: str, field: str) -> Response:
        table = self._table(sobject)
        path = table.blob_path(record_id, field) if table.get(record_id) is not None else None
        if path is None:
            raise _NOT_FOUND
        response = Response(_stream(path), content_type="application/octetstream", direct_passthrough=True)
        response.content_length = path.stat().st_size
        return response

    def _query(self, request: Request, version: str) -> Response:
        return self._run(request, version, include_deleted=False)

    def _query_all(self, request: Request, version: str) -> Response:
        return self._run(request, version, include_deleted=True)

    def _run(self, request: Request, version: str, *, include_deleted: bool) -> Response:
        text = request.args.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        self.org.quirks.check_query(self.org, text)
        result = run_query(self.org, text, include_deleted=include_deleted)
        self.org.quirks.check_result(result.table.name, len(result.rows))
        if result.is_count:
            return _json({"totalSize": result.total_size, "done": True, "records": []})
        cursor = Cursor(result, self._page_size(request), include_deleted)
        locator = self.state.open_cursor(cursor) if len(result.rows) > cursor.page_size else ""
        return self._page(cursor, locator, 0, version)

    def _query_more(self, request: Request, version: str, locator: str) -> Response:
        name, _, offset_text = locator.rpartition("-")
        cursor = self.state.cursor(name)
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.result.rows):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, name, int(offset_text), version)

    def _page(self, cursor: Cursor, locator: str, offset: int, version: str) -> Response:
        rows = cursor.result.rows
        end = min(offset + cursor.page_size, len(rows))
        body: dict[str, Any] = {"totalSize": cursor.result.total_size, "done": end >= len(rows)}
        if end < len(rows):
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        org = self.org

        def records() -> list[dict[str, Any]]:
            return [project(org, cursor.result, r, version) for r in rows[offset:end]]

        if self.cache is None:
            body["records"] = records()
            return _json(body)
        # The same bytes as _json(body): the head is ASCII, so it encodes alike in either form.
        key = ("rest", version, cursor.result.query.text, cursor.include_deleted, cursor.page_size, offset)
        rendered = self.cache.body(key, lambda: jsonlit.dumps_bytes(records()))
        head = jsonlit.dumps_bytes(body)[:-1] + b',"records":'
        response = Response([head, rendered, b"}"], content_type=_JSON, direct_passthrough=True)
        response.content_length = len(head) + len(rendered) + 1
        return response

    def _page_size(self, request: Request) -> int:
        if self.page_size:
            return self.page_size
        match = _BATCH_SIZE.search(request.headers.get("Sforce-Query-Options", ""))
        return min(max(int(match.group(1)), 200), 2000) if match else DEFAULT_BATCH

    def _limits(self, request: Request, version: str) -> Response:
        used = self.state.used
        body = {"DailyApiRequests": {"Max": self.state.api_max, "Remaining": max(0, self.state.api_max - used)}}
        for name in ("DailyBulkApiRequests", "DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB"):
            maximum, remaining = self.bulk.daily_jobs() if name == DAILY_JOBS else self.org.api_limit(name)
            body[name] = {"Max": maximum, "Remaining": remaining}
        return _json(body)

    # --- data: replication, record counts, Bulk API 2.0 (bulk.py, replication.py) ---------------

    def _deleted(self, request: Request, version: str, sobject: str) -> Response:
        table = self._table(sobject)
        return _json(replication.deleted(table, request.args.get("start"), request.args.get("end")))

    def _updated(self, request: Request, version: str, sobject: str) -> Response:
        table = self._table(sobject)
        return _json(replication.updated(table, request.args.get("start"), request.args.get("end")))

    def _record_count(self, request: Request, version: str) -> Response:
        wanted = [n.strip() for n in request.args.get("sObjects", "").split(",") if n.strip()]
        found = (self.org.table(n) for n in wanted) if wanted else iter(self.org.tables.values())
        return _json(replication.record_counts([t for t in found if t is not None]))

    def _bulk_jobs(self, request: Request, version: str) -> Response:
        if request.method == "POST":
            return _json(self.bulk.create(request.get_data(), version, org=self.org))
        return _json(self.bulk.listing())

    def _bulk_job(self, request: Request, version: str, job_id: str) -> Response:
        if request.method == "PATCH":
            return _json(self.bulk.abort(job_id, request.get_data()))
        if request.method == "DELETE":
            self.bulk.delete(job_id)
            return Response(status=204)
        return _json(self.bulk.info(job_id))

    def _bulk_results(self, request: Request, version: str, job_id: str) -> Response:
        page = self.bulk.results(job_id, version, request.args.get("locator"), request.args.get("maxRecords"))
        response = Response(page.chunks, content_type="text/csv", direct_passthrough=True)
        response.headers["Sforce-NumberOfRecords"] = str(page.number_of_records)
        response.headers["Sforce-Locator"] = page.locator
        return response


def _json(body: Any, status: int = 200) -> Response:
    return Response(jsonlit.dumps_bytes(body), status, content_type=_JSON)


def _error(error: ApiError) -> Response:
    return _json(error.body(), error.status)


def _gauged(body: Iterable[bytes], leave: Callable[[], None], length: int | None) -> Iterator[bytes]:
    """The body as it was, leaving the in-flight gauge as its last byte goes out.

    With a Content-Length the request leaves just before the piece that completes it is sent, so a
    client holding the whole answer never finds its request still counted (leaving on close, after
    the last write, would race with the client's next request). A body cut short (dropped
    connection) or without a length leaves when the server closes it.
    """
    left = False

    def finish() -> None:
        nonlocal left
        if not left:
            left = True
            leave()

    sent = 0
    try:
        if length == 0:
            finish()
        for piece in body:
            sent += len(piece)
            if length is not None and sent >= length:
                finish()
            yield piece
    finally:
        finish()
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _stream(path: Path) -> Iterator[bytes]:
    """File bytes in chunks; the file opens on first read and closes when the response closes."""
    with path.open("rb") as handle:
        while chunk := handle.read(256 * 1024):
            yield chunk


def _oversized(request: Request, environ: WSGIEnvironment) -> tuple[int, str] | None:
    """(status, title) when the request line or its headers are over Salesforce's size limit."""
    uri = len(
        str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path).encode("latin-1", "replace")
    )
    if uri > MAX_URI_AND_HEADERS:
        return 414, "URI Too Long"
    headers = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
    if uri + headers > MAX_URI_AND_HEADERS:
        return 431, "Request Header Fields Too Large"
    return None


def _page(status: int, title: str) -> Response:
    body = f"<html><head><title>{status} {title}</title></head><body><h1>{status} {title}</h1></body></html>"
    return Response(body, status, content_type="text/html;charset=UTF-8")
