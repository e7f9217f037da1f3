"""Bulk API 2.0 query jobs (POST/GET /jobs/query, GET/PATCH/DELETE /jobs/query/{id}, .../results).

A job is validated like Salesforce does at creation, against the org as the request's API version
and user see it (hidden fields are INVALID_FIELD): objects the Bulk API refuses, the objects'
filter quirks, SOQL errors as REST gives them, aggregates, OFFSET, compound and base64 fields
(quirks.py words the object and field refusals). REST's `query_timeout_rows` does not apply. Its
state advances on each GET of the job: InProgress until the `polls_to_complete`-th GET, which
reports the job's `outcome` (JobComplete unless a fault says otherwise). Results are CSV pages of
at most `page_size` rows, rendered from the query bound at creation; the locator is base64 of the
next offset, as real ones look ("MTAwMDA"), and stays valid while the job exists.

org.json knobs: "bulk": {"polls_to_complete": 2, "page_size": 50000}; "limits"
{"DailyBulkV2QueryJobs": ...} caps the jobs created until the next reset.
Fault seams: `overrides` (job id -> the `bulk_state` rule's BulkJobOverride, applied when the job
is next read), `on_create` (callbacks that may set `job.outcome` / `job.error_message`), `force`.
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
from .cache import ResponseCache
from .errors import ApiError, FakeOrgError
from .ids import sf_id
from .jsonlit import Lit
from .org import FakeOrg
from .query import QueryResult, run_query
from .soql import parse
from .state import BulkJobOverride

OPERATIONS = ("query", "queryAll")
FINAL_STATES = ("JobComplete", "Failed", "Aborted")
OUTCOMES = ("JobComplete", "Failed", "Aborted", "InProgress")
DEFAULT_POLLS = 2
DEFAULT_PAGE_SIZE = 50000
DAILY_JOBS = "DailyBulkV2QueryJobs"
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
    applied: BulkJobOverride | None = None  # the fault override last applied


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
    overrides: Callable[[str], BulkJobOverride | None] = lambda job_id: None
    on_create: list[Callable[[BulkJob], None]] = field(default_factory=list)
    cache: ResponseCache | None = None
    _jobs: dict[str, BulkJob] = field(default_factory=dict)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_org(
        cls,
        org: FakeOrg,
        user_id: str,
        *,
        overrides: Callable[[str], BulkJobOverride | None] | None = None,
        cache: ResponseCache | None = None,
    ) -> BulkJobs:
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
        jobs = cls(org, user_id, values["polls_to_complete"], values["page_size"], cache=cache)
        if overrides is not None:
            jobs.overrides = overrides
        return jobs

    # --- requests ----------------------------------------------------------------------------

    def create(self, body: bytes, version: str, *, org: FakeOrg) -> dict[str, Any]:
        """POST /jobs/query: validate and register a job; answers its info (state UploadComplete).

        `org` is the org as the request sees it (quirks.view); the job's results keep that view.
        """
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
        result = _bound_query(org, text, include_deleted=operation == "queryAll")
        with self._lock:
            if self._jobs_remaining() <= 0:
                message = f"Max number of Bulk API 2.0 query jobs in 24 hours exceeded ({DAILY_JOBS})"
                raise ApiError(400, "LIMIT_EXCEEDED", message)  # (unconfirmed wording)
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

    def daily_jobs(self) -> tuple[int, int]:
        """(Max, Remaining) of DailyBulkV2QueryJobs: org.json's start value less the jobs created."""
        maximum, _ = self.org.api_limit(DAILY_JOBS)
        with self._lock:
            return maximum, max(0, self._jobs_remaining())

    def reset(self) -> None:
        """Forget every job (ids start again at 750...001) and the daily job count (a reset hook)."""
        with self._lock:
            self._jobs.clear()
            self._seq = 0

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
            jobs = [self._job(job_id) for job_id in self._jobs]
            return {"done": True, "records": [_info(j, full=True) for j in jobs], "nextRecordsUrl": None}

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

        def render() -> Iterator[bytes]:
            return csv_pages(
                job.result.columns,
                job.result.rows.iter_from(start, stop),
                delimiter=DELIMITERS[job.column_delimiter],
                line_ending=LINE_ENDINGS[job.line_ending],
            )

        if self.cache is None:
            pages = render()
        else:
            text = job.result.query.text
            key = ("bulk", job.api_version, job.operation, text, job.column_delimiter, job.line_ending, start, stop)
            pages = self.cache.stream(key, render)
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
        """The job (15- or 18-char id) as it stands now: a new fault override applies first."""
        job = self._jobs.get(job_id) or next((j for j in self._jobs.values() if j.id[:15] == job_id[:15]), None)
        if job is None:
            raise _NOT_FOUND
        forced = self.overrides(job.id) or self.overrides(job.id[:15])  # a rule may have seen either form
        if forced is not None and forced != job.applied:
            # Reported from now on; a later client abort still wins (the same override is not re-applied).
            job.applied, job.outcome, job.error_message = forced, forced.state, forced.error_message or ""
            job.state, job.modified = forced.state, _now()
        return job

    def _jobs_remaining(self) -> int:
        return self.org.api_limit(DAILY_JOBS)[1] - self._seq

    def _advance(self, job: BulkJob) -> None:
        job.modified = _now()
        if job.polls < self.polls_to_complete or job.outcome == "InProgress":
            job.state = "InProgress"
            return
        job.state = job.outcome
        if job.outcome == "JobComplete":
            job.processed = len(job.result.rows)


def _bound_query(org: FakeOrg, text: str, *, include_deleted: bool) -> QueryResult:
    """Bind a job's query, refusing it in Salesforce's order: the object, its filter quirks, the
    SOQL itself, then what Bulk cannot serve (aggregates, OFFSET, compound and base64 fields)."""
    query = parse(text)
    table = org.table(query.sobject)
    refused = org.quirks.bulk_entity_refusal(table.name) if table is not None else None
    if refused is not None:
        raise refused
    org.quirks.check_query(org, text)
    result = run_query(org, text, include_deleted=include_deleted)
    if query.is_count:
        raise ApiError(400, "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0")  # (unconfirmed)
    if query.offset is not None:
        raise ApiError(400, "API_ERROR", "OFFSET is not supported by Bulk API 2.0")  # (unconfirmed)
    refused = org.quirks.bulk_field_refusal(c.path.field for c in result.columns)
    if refused is not None:
        raise refused
    return result


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
