"""Bulk API 2.0 query jobs (POST/GET /jobs/query, GET/PATCH/DELETE /jobs/query/{id}, .../results).

A job is validated like Salesforce does at creation (SOQL errors as REST gives them, compound and
base64 fields, aggregates, OFFSET, objects the Bulk API refuses), then its state advances on each
GET of the job: InProgress until the `polls_to_complete`-th GET, which reports the job's
`outcome` (JobComplete unless a fault set Failed / Aborted / InProgress = stuck). Results are
CSV pages of at most `page_size` rows; the locator is base64 of the next offset, as real ones look
("MTAwMDA"), and stays valid while the job exists.

org.json knobs: "bulk": {"polls_to_complete": 2, "page_size": 50000}.
Seams for quirks/faults: `BulkJobs.not_supported` (object name -> refuse with INVALIDENTITY),
`BulkJobs.on_create` (callbacks that may set `job.outcome` / `job.error_message`), `BulkJobs.force`.
Error codes/wording not taken from a recorded response are marked (unconfirmed).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .bulkcsv import DELIMITERS, LINE_ENDINGS, csv_pages
from .errors import ApiError, FakeOrgError
from .ids import sf_id
from .jsonlit import Lit
from .org import FakeOrg
from .query import QueryResult, run_query

OPERATIONS = ("query", "queryAll")
FINAL_STATES = ("JobComplete", "Failed", "Aborted")
OUTCOMES = ("JobComplete", "Failed", "Aborted", "InProgress")
DEFAULT_POLLS = 2
DEFAULT_PAGE_SIZE = 50000
_NOT_FOUND = ApiError(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass
class BulkJob:
    """One query job; `outcome` is where it ends once polled enough (the fault seam)."""

    id: str
    operation: str
    object: str
    api_version: str
    created_by: str
    created: str
    column_delimiter: str
    line_ending: str
    result: QueryResult
    state: str = "UploadComplete"
    polls: int = 0
    outcome: str = "JobComplete"
    error_message: str = ""
    processed: int = 0
    modified: str = ""


@dataclass
class ResultsPage:
    """One GET .../results answer: CSV chunks, the row count and the next locator ("null" at the end)."""

    chunks: Iterator[bytes]
    number_of_records: int
    locator: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class BulkJobs:
    """Every query job of one server; thread-safe (each method takes the lock for job state)."""

    org: FakeOrg
    user_id: str
    polls_to_complete: int = DEFAULT_POLLS
    page_size: int = DEFAULT_PAGE_SIZE
    not_supported: Callable[[str], bool] = lambda name: False
    on_create: list[Callable[[BulkJob], None]] = field(default_factory=list)
    _jobs: dict[str, BulkJob] = field(default_factory=dict)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_org(cls, org: FakeOrg, user_id: str) -> BulkJobs:
        """Knobs from org.json "bulk" (polls_to_complete >= 1, page_size >= 1).

        Raises:
            FakeOrgError: the section is not an object, has unknown keys or bad values.
        """
        raw = org.settings.get("bulk") or {}
        if not isinstance(raw, dict) or set(raw) - {"polls_to_complete", "page_size"}:
            raise FakeOrgError('org.json "bulk" takes only {"polls_to_complete": N, "page_size": N}')
        defaults = (("polls_to_complete", DEFAULT_POLLS), ("page_size", DEFAULT_PAGE_SIZE))
        values = {key: raw.get(key, default) for key, default in defaults}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FakeOrgError(f"org.json bulk.{key} must be an integer >= 1, got {value!r}")
        # The org's quirks (not_bulk, not_queryable) say which objects Bulk refuses with INVALIDENTITY.
        refused = org.quirks.bulk_refusal
        return cls(
            org, user_id, values["polls_to_complete"], values["page_size"], lambda name: refused(name, ()) is not None
        )

    # --- requests ----------------------------------------------------------------------------

    def create(self, body: bytes, version: str) -> dict[str, Any]:
        """POST /jobs/query: validate and register a job; answers its info (state UploadComplete)."""
        spec = _json_body(body)
        operation, text = spec.get("operation"), spec.get("query")
        if operation not in OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation} (use query or queryAll)")  # unconfirmed
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "Query is required for query jobs")  # (unconfirmed)
        delimiter = spec.get("columnDelimiter", "COMMA")
        ending = spec.get("lineEnding", "LF")
        if delimiter not in DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"Invalid column delimiter: {delimiter}")  # (unconfirmed)
        if ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"Invalid line ending: {ending}")  # (unconfirmed)
        if spec.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", f"Invalid content type: {spec.get('contentType')}")  # (unconfirmed)
        result = run_query(self.org, text, include_deleted=operation == "queryAll")
        self._check_bulk(result)
        with self._lock:
            self._seq += 1
            now = _now()
            job = BulkJob(
                sf_id("750", self._seq), operation, result.table.name, version, self.user_id, now,
                delimiter, ending, result, modified=now,
            )  # fmt: skip
            for hook in self.on_create:
                hook(job)
            if job.outcome not in OUTCOMES:
                raise ValueError(f"bulk job outcome must be one of {OUTCOMES}, got {job.outcome!r}")
            self._jobs[job.id] = job
            return _info(job, full=False)

    def info(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/query/{id}: one poll; advances the state machine."""
        with self._lock:
            job = self._job(job_id)
            if job.state not in FINAL_STATES:
                job.polls += 1
                self._advance(job)
            return _info(job, full=True)

    def listing(self) -> dict[str, Any]:
        """GET /jobs/query: every job, in creation order."""
        with self._lock:
            return {"done": True, "records": [_info(j, full=True) for j in self._jobs.values()], "nextRecordsUrl": None}

    def abort(self, job_id: str, body: bytes) -> dict[str, Any]:
        """PATCH {"state": "Aborted"}: only jobs not yet finished can be aborted."""
        wanted = _json_body(body).get("state")
        with self._lock:
            job = self._job(job_id)
            if wanted != "Aborted":
                raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state for a query job: {wanted}")  # (unconfirmed)
            if job.state == "JobComplete":
                raise ApiError(400, "INVALIDJOBSTATE", "Aborting already Completed Job not allowed")
            if job.state in FINAL_STATES:
                raise ApiError(400, "INVALIDJOBSTATE", f"Aborting {job.state} Job not allowed")  # (unconfirmed)
            job.state, job.modified = "Aborted", _now()
            return _info(job, full=False)

    def delete(self, job_id: str) -> None:
        """DELETE: removes a finished job with its results (204)."""
        with self._lock:
            job = self._job(job_id)
            if job.state not in FINAL_STATES:
                message = f"Deleting a job in state {job.state} is not allowed; abort it first"  # (unconfirmed)
                raise ApiError(400, "INVALIDJOBSTATE", message)
            del self._jobs[job_id]

    def results(self, job_id: str, version: str, locator: str | None, max_records: str | None) -> ResultsPage:
        """GET .../results: one CSV page from `locator` (the first when absent)."""
        with self._lock:
            job = self._job(job_id)
            if job.state != "JobComplete":
                raise ApiError(400, "API_ERROR", f"Job [{job.id}] is not complete: {job.state}")  # (unconfirmed)
        if version != job.api_version:
            message = f"Job [{job.id}] was created with API version {job.api_version}; use it for the results"
            raise ApiError(409, "API_ERROR", message)  # (unconfirmed wording; 409 is documented)
        size = self.page_size
        if max_records is not None:
            if not max_records.isdigit() or int(max_records) < 1:
                raise ApiError(400, "API_ERROR", f"maxRecords must be a positive integer: {max_records}")
            size = min(size, int(max_records))
        start = _offset(locator, job.processed)
        stop = min(start + size, job.processed)
        more = stop < job.processed
        pages = csv_pages(
            job.result.columns,
            job.result.rows.iter_from(start, stop),
            delimiter=DELIMITERS[job.column_delimiter],
            line_ending=LINE_ENDINGS[job.line_ending],
        )
        return ResultsPage(pages, stop - start, _locator(stop) if more else "null")

    def force(self, job_id: str, outcome: str, error_message: str = "") -> None:
        """Seam for fault rules: make a job end (or stay) as `outcome` from its next poll."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        with self._lock:
            job = self._job(job_id)
            job.outcome, job.error_message = outcome, error_message
            if job.state in FINAL_STATES:  # already finished: the next poll reports the new outcome
                job.state = outcome

    # --- internals -----------------------------------------------------------------------------

    def _job(self, job_id: str) -> BulkJob:
        job = self._jobs.get(job_id) or next((j for j in self._jobs.values() if j.id[:15] == job_id[:15]), None)
        if job is None:
            raise _NOT_FOUND
        return job

    def _advance(self, job: BulkJob) -> None:
        job.modified = _now()
        if job.polls < self.polls_to_complete or job.outcome == "InProgress":
            job.state = "InProgress"
            return
        job.state = job.outcome
        if job.outcome == "JobComplete":
            job.processed = len(job.result.rows)

    def _check_bulk(self, result: QueryResult) -> None:
        query = result.query
        name = result.table.name
        if query.is_count:
            raise ApiError(400, "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0")  # (unconfirmed)
        if query.offset is not None:
            raise ApiError(400, "API_ERROR", "OFFSET is not supported by Bulk API 2.0")  # (unconfirmed)
        for column in result.columns:
            kind = column.path.field.type
            if kind in ("address", "location"):
                raise ApiError(400, "API_ERROR", "Selecting compound data not supported in Bulk Query")
            if kind == "base64":
                message = f"Cannot serialize value for '{column.path.field.name}' in CSV format"
                raise ApiError(400, "FEATURENOTENABLED", message)  # code (unconfirmed), message as Bulk v1
        # After the column checks (which one Salesforce reports first is unconfirmed).
        if self.not_supported(name):
            raise ApiError(400, "INVALIDENTITY", f"Entity '{name}' is not supported by the Bulk API.")


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        spec = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return spec


def _locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode("ascii")).decode("ascii").rstrip("=")


def _offset(locator: str | None, total: int) -> int:
    if not locator:
        return 0
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.isdigit() or int(text) > total:
        raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")  # (unconfirmed)
    return int(text)


def _info(job: BulkJob, *, full: bool) -> dict[str, Any]:
    """Job info in Salesforce's key order; creation/abort answers omit the counters."""
    body: dict[str, Any] = {
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": job.created_by,
        "createdDate": job.created,
        "systemModstamp": job.modified,
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": Lit(job.api_version),
    }
    if full:
        body["jobType"] = "V2Query"
    body["lineEnding"] = job.line_ending
    body["columnDelimiter"] = job.column_delimiter
    if full:
        body["numberRecordsProcessed"] = job.processed
        body["retries"] = 0
        body["totalProcessingTime"] = 0
    if job.state == "Failed":
        body["errorMessage"] = job.error_message
    return body
