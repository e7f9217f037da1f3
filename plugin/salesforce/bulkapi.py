"""The Bulk API 2.0 query endpoints, driven with the client's own session.

simple-salesforce 1.12.10's ``bulk2`` copies the session id once (no re-login), sleeps 5 s before
its first poll, cannot take a timeout and leaves temp files behind, so we call the four endpoints
ourselves: create (POST), poll (GET), results pages (GET, streamed to a file) and abort (PATCH).
Every GET goes through ``OrgClient.with_retries``: a page whose connection dropped is fetched
again with the same locator, an expired session is renewed and the same job goes on.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from plugin.salesforce.client import CHUNK, OrgClient
from plugin.salesforce.errors import SalesforceDataError, SalesforceError


@dataclass(frozen=True)
class ResultsPage:
    """One results page saved to a file: its row count (Sforce-NumberOfRecords) and the next locator."""

    records: int
    locator: str | None  # None: this was the last page
    bytes: int


def _json(response: requests.Response, what: str, object_name: str) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise SalesforceDataError(f"The Bulk API answered {what} without JSON.", object_name=object_name) from e
    if not isinstance(body, dict):
        raise SalesforceDataError(f"The Bulk API answered {what} with no JSON object.", object_name=object_name)
    return body


class BulkQueryApi:
    """Query jobs of one object."""

    def __init__(self, client: OrgClient, object_name: str) -> None:
        self.client = client
        self.object = object_name

    def create(self, soql: str, *, include_deleted: bool = True) -> dict[str, Any]:
        """POST jobs/query; answers the job info (state UploadComplete).

        Not retried after a dropped connection (a POST may have created the job): the caller
        falls back to REST instead. An expired session is renewed and the POST sent again.
        """
        body = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "CRLF",  # our CSV's line end: pages are copied as they come (bulkrows.py)
        }

        def post() -> dict[str, Any]:
            self.client.usage.check_reserve()
            response = self.client.send("POST", "jobs/query", object_name=self.object, json=body)
            return _json(response, "the job creation", self.object)

        return self.client.with_session_retry(post, object_name=self.object)

    def poll(self, job_id: str) -> dict[str, Any]:
        """GET jobs/query/<id>: the job's state (each poll is one API call)."""

        def get() -> dict[str, Any]:
            self.client.usage.check_reserve()
            response = self.client.send("GET", f"jobs/query/{job_id}", object_name=self.object)
            return _json(response, "a job poll", self.object)

        return self.client.with_retries(get, object_name=self.object)

    def abort(self, job_id: str) -> None:
        """PATCH {"state": "Aborted"}; a job that ended meanwhile is left as it is."""

        def patch() -> None:
            self.client.send("PATCH", f"jobs/query/{job_id}", object_name=self.object, json={"state": "Aborted"})

        with contextlib.suppress(SalesforceError):  # best effort: the job is abandoned either way
            self.client.with_session_retry(patch, object_name=self.object)

    def open_results(self, job_id: str, locator: str | None) -> tuple[requests.Response, int, str | None]:
        """GET one results page, streamed: (the open response, Sforce-NumberOfRecords, next locator).

        The caller reads the body and closes the response; run it inside ``OrgClient.with_retries``
        (with the caller's output rewound), so a page that drops midway is fetched again whole.

        Raises:
            SalesforceDataError: the answer lacks Sforce-NumberOfRecords.
        """
        self.client.usage.check_reserve()
        response = self.client.send(
            "GET",
            f"jobs/query/{job_id}/results",
            object_name=self.object,
            stream=True,
            params={"locator": locator} if locator else None,
            headers={"Accept": "text/csv"},
        )
        raw = response.headers.get("Sforce-NumberOfRecords")
        if raw is None or not raw.strip().isdigit():
            response.close()
            raise SalesforceDataError(
                f"A Bulk results page of {self.object} has no Sforce-NumberOfRecords header.",
                object_name=self.object,
            )
        following = response.headers.get("Sforce-Locator")
        return response, int(raw), None if following in (None, "", "null") else following

    def results(self, job_id: str, locator: str | None, target: Path) -> ResultsPage:
        """GET one results page into ``target`` (rewritten from the start on every try)."""

        def fetch() -> ResultsPage:
            response, records, following = self.open_results(job_id, locator)
            size = 0
            with response, open(target, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            return ResultsPage(records, following, size)

        return self.client.with_retries(fetch, object_name=self.object)
