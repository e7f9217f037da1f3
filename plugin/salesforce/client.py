"""The REST resources a backup reads: the org's identity, describes, limits, record counts, query
pages and file bodies.

They sit on ``OrgConnection`` (``connect.py``), which owns the session, the re-logins and the
retries; this module knows the resources: their paths, the reserve check before each describe,
page and body (``usage.py``), and the shape every answer must have. Bodies stay as Salesforce
sent them: describes byte for byte (``RawBody``, saved into the backup), query pages with every
number as its literal text, file bodies streamed to disk without sitting in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceResourceNotFound,
)

from plugin.salesforce.connect import OrgConnection
from plugin.salesforce.errors import SalesforceDataError, SalesforceError
from plugin.salesforce.identity import OrgIdentity, org_id_from_token
from plugin.salesforce.literal import NumberLiteral
from plugin.salesforce.translate import translate_errors

CHUNK = 1 << 20
URL_BUDGET = 8000  # characters of one recordCount URL (well under the 16,384-byte URI limit)


class Writable(Protocol):
    """Where a downloaded body goes: a file, or a wrapper that also hashes what passes."""

    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class RawBody:
    """A JSON body as Salesforce sent it (saved byte for byte) and its parsed form (for planning)."""

    raw: bytes
    data: dict[str, Any]


def _json_or_bytes(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.content


class OrgClient(OrgConnection):
    """What the export holds of an org: the connection and the REST resources read through it."""

    def identity(self) -> OrgIdentity:
        """The org's id and name, from the Organization record."""
        result = self.with_retries(lambda: self.sf.query("SELECT Id, Name FROM Organization LIMIT 1"))
        records = result.get("records") or []
        if not records:
            token_org = org_id_from_token(self.credentials.access_token)
            if token_org:
                return OrgIdentity(token_org, None, self.instance_url)
            raise SalesforceDataError("The Organization query returned no record; cannot tell which org this is.")
        return OrgIdentity(str(records[0]["Id"]), records[0].get("Name"), self.instance_url)

    def _get_json(self, path: str, object_name: str | None, params: dict[str, str] | None = None) -> RawBody:
        """GET a REST resource under the versioned base URL, keeping the body's exact bytes."""

        def fetch() -> requests.Response:
            self.usage.check_reserve()
            return self.send("GET", path, object_name=object_name, headers=dict(self.sf.headers), params=params)

        response = self.with_retries(fetch, object_name=object_name)
        try:
            data = json.loads(response.content)
        except ValueError as e:
            raise SalesforceDataError(f"{path} did not return JSON.", object_name=object_name) from e
        if not isinstance(data, dict):
            raise SalesforceDataError(f"{path} did not return a JSON object.", object_name=object_name)
        return RawBody(response.content, data)

    def describe_global(self) -> RawBody:
        body = self._get_json("sobjects/", None)
        if not isinstance(body.data.get("sobjects"), list):
            raise SalesforceDataError("describeGlobal did not return an sobjects list.")
        return body

    def describe(self, object_name: str) -> RawBody:
        # sf.<Obj>.describe() takes no timeout and re-logs in without bound; a plain GET does neither.
        body = self._get_json(f"sobjects/{object_name}/describe", object_name)
        if not isinstance(body.data.get("fields"), list):
            raise SalesforceDataError(f"The describe of {object_name} has no field list.", object_name=object_name)
        return body

    def describe_many(self, names: Sequence[str]) -> dict[str, RawBody | SalesforceError]:
        """Each object's describe, or the error ``describe`` would raise for it: 25 to an API call
        through the Composite API (``composite.py``, which builds on this module)."""
        from plugin.salesforce.composite import describe_many

        return describe_many(self, names)

    def get_deleted(self, object_name: str, *, start: str, end: str) -> dict[str, Any]:
        """sObject Get Deleted: ids deleted in [start, end) (Salesforce ignores seconds) from the
        delete log, which also holds rows already purged from the recycle bin."""
        query = urlencode({"start": start, "end": end})
        return self._get_json(f"sobjects/{object_name}/deleted/?{query}", object_name).data

    def limits(self) -> dict[str, Any]:
        return self._get_json("limits/", None).data

    def record_counts(self, names: Sequence[str]) -> dict[str, int]:
        """Record counts per object from ``limits/recordCount`` (one call per ~8,000 URL characters).

        The counts exclude the recycle bin and Salesforce updates them now and then, so they size
        the work (REST or Bulk); they never prove a CSV complete. Objects it does not list are absent.
        """
        counts: dict[str, int] = {}
        batch: list[str] = []
        batches: list[list[str]] = []
        for name in names:
            if batch and len(urlencode({"sObjects": ",".join([*batch, name])})) > URL_BUDGET:
                batches.append(batch)
                batch = []
            batch.append(name)
        if batch:
            batches.append(batch)
        for part in batches:
            body = self._get_json("limits/recordCount", None, params={"sObjects": ",".join(part)}).data
            for item in body.get("sObjects") or ():
                if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("count"), int):
                    counts[item["name"]] = item["count"]
        return counts

    def query_page(
        self,
        *,
        soql: str | None = None,
        next_url: str | None = None,
        include_deleted: bool = True,
        object_name: str,
        batch_size: int = 2000,
    ) -> dict[str, Any]:
        """One page of a query: the first one (``soql``) or the one at ``next_url``.

        simple-salesforce's ``query_all_iter`` cannot fetch a page again mid-iteration; a
        ``nextRecordsUrl`` can, so a page whose connection dropped (or whose session expired) is
        fetched again from the same locator. Numbers are kept as their literal text.
        """
        if (soql is None) == (next_url is None):
            raise ValueError("give soql or next_url")
        options = {"Sforce-Query-Options": f"batchSize={batch_size}"}

        def fetch() -> Any:
            self.usage.check_reserve()
            if soql is not None:
                resource = "queryAll/" if include_deleted else "query/"
                response = self.send("GET", resource, object_name=object_name, headers=options, params={"q": soql})
            else:
                response = self.send("GET", str(next_url), object_name=object_name, headers=options)
            try:
                return json.loads(response.content, parse_float=NumberLiteral, parse_int=NumberLiteral)
            except ValueError:  # a 200 that is no JSON (a proxy's HTML page): as a page without records
                return None

        page = self.with_retries(fetch, object_name=object_name)
        if not isinstance(page, dict) or not isinstance(page.get("records"), list):
            raise SalesforceDataError("A query page has no records list.", object_name=object_name)
        return page

    def query(self, soql: str, *, object_name: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of ``soql``, page by page (``query_page``: each page retried from its locator)."""
        page = self.query_page(soql=soql, include_deleted=include_deleted, object_name=object_name)
        while True:
            yield from page["records"]
            url = page.get("nextRecordsUrl")
            if page.get("done", True) or not isinstance(url, str):
                return
            page = self.query_page(next_url=url, object_name=object_name)

    def download(self, url_path: str, out: Writable, *, object_name: str) -> tuple[int, str]:
        """Stream a blob (``/services/data/vNN.N/sobjects/<Obj>/<Id>/<Field>``) into ``out``.

        Returns (bytes written, sha256 hex). The body never sits in memory whole. Each body is an
        API call, so the reserve is checked first.
        """
        self.usage.check_reserve()
        url = f"{self.instance_url}{url_path}"
        headers = self.auth_headers()
        digest = hashlib.sha256()
        size = 0
        with (
            translate_errors(object_name, can_relogin=self.credentials.can_relogin),
            self.session.get(url, headers=headers, stream=True) as response,
        ):
            if response.status_code >= 300:
                error = {401: SalesforceExpiredSession, 404: SalesforceResourceNotFound}.get(
                    response.status_code, SalesforceGeneralError
                )
                raise error(url, response.status_code, object_name, _json_or_bytes(response))
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()
