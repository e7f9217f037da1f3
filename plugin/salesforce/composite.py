"""The Composite API: many GETs in one API call; describes of many objects, up to 25 a call.

One ``sobjects/<Object>/describe`` per object is what grows with the org (500-1,000 queryable
objects in a real one); ``POST .../composite`` with up to 25 GET subrequests counts as one call
("the entire series of requests counts as a single call toward your API limits"). What each object
gets is what ``OrgClient.describe`` would have given it:

- a subresponse 2xx: the describe, its bytes cut out of the answer as Salesforce sent them
  (``rawjson.py``), checked as ``describe`` checks it;
- a subresponse error: the error the direct call raises for that status and body (translated by
  ``translate.translate_errors``, the one place errors are mapped); a 5xx, 420 or 429 subresponse,
  which the direct call would have retried, is described directly (retries included);
- a 401 subresponse: the session expired; logged in again (when the credentials allow) and the
  whole composite sent again, as ``with_session_retry`` does for any call.

The composite request itself is retried like a GET (it only reads): 5xx/429 by urllib3, dropped
connections by ``with_retries``. An org that refuses it (404 ``NOT_FOUND``: an old API version or a
proxy; 405; a 400 about the composite request) is described one object per call from then on, and
the log says so once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from plugin.salesforce.client import RawBody
from plugin.salesforce.errors import SalesforceApiError, SalesforceDataError, SalesforceError
from plugin.salesforce.rawjson import entries_with_raw
from plugin.salesforce.session import retry_posts
from plugin.salesforce.translate import retried_status, translate_errors

if TYPE_CHECKING:
    from plugin.salesforce.client import OrgClient

MAX_SUBREQUESTS = 25  # Salesforce: "You can have up to 25 subrequests in a single call."
_BY_STATUS = {
    300: SalesforceMoreThanOneRecord,
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}
_REFUSED_STATUS = (400, 404, 405)
log = structlog.get_logger("sfbackup.salesforce")

Described = RawBody | SalesforceError


@dataclass(frozen=True)
class Subresponse:
    status: int
    body: Any
    raw: bytes  # the body's bytes as Salesforce sent them


@dataclass(frozen=True)
class Subrequest:
    """One GET inside a composite request: its URL (from ``/services/data/``) and its own headers."""

    url: str
    headers: Mapping[str, str] | None = None


def describe_many(client: OrgClient, names: Sequence[str]) -> dict[str, Described]:
    """Every object's describe, or the error describing it raised, 25 objects to an API call.

    Raises:
        SalesforceError: the composite request itself failed (network, session, limits, 5xx after
        the retries): the error the first object's describe would have raised.
    """
    results: dict[str, Described] = {}
    for start in range(0, len(names), MAX_SUBREQUESTS):
        batch = list(names[start : start + MAX_SUBREQUESTS])
        answers = (
            None if client.composite_refused else send_gets(client, {n: Subrequest(_url(client, n)) for n in batch})
        )
        for name in batch:
            sub = answers[name] if answers is not None else None
            results[name] = (
                _direct(client, name) if sub is None or retried_status(sub.status) else _outcome(client, name, sub)
            )
    return results


def _direct(client: OrgClient, name: str) -> Described:
    try:
        return client.describe(name)
    except SalesforceError as e:
        return e


def _url(client: OrgClient, name: str) -> str:
    return f"/services/data/v{client.api_version}/sobjects/{name}/describe"


def send_gets(client: OrgClient, gets: Mapping[str, Subrequest]) -> dict[str, Subresponse] | None:
    """One composite request of independent GETs, keyed by object: the subresponses by object, or
    None when the org refuses the Composite API (logged once, and ``client.composite_refused`` set).

    Raises:
        SalesforceError: the composite request itself failed (network, session, limits, 5xx after
        the retries), as the first object's direct call would have.
    """
    names = list(gets)
    url = f"{client.base_url}composite"
    retry_posts(client.session, url)
    refs = {f"d{n}": name for n, name in enumerate(names)}
    subrequests: list[dict[str, Any]] = []
    for ref, name in refs.items():
        sub: dict[str, Any] = {"method": "GET", "url": gets[name].url, "referenceId": ref}
        if gets[name].headers:
            sub["httpHeaders"] = dict(gets[name].headers or {})
        subrequests.append(sub)
    body = json.dumps({"allOrNone": False, "compositeRequest": subrequests})

    def send() -> dict[str, Subresponse]:
        client.usage.check_reserve()
        response = client.send("POST", url, object_name=names[0], headers=dict(client.sf.headers), data=body)
        answers = _parse(response.content, refs)
        expired = next((a for a in answers.values() if a.status == 401), None)
        if expired is not None:  # the session of the whole request: log in again, send it again
            raise SalesforceExpiredSession(url, 401, names[0], expired.body)
        return answers

    try:
        return client.with_retries(send, object_name=names[0])
    except SalesforceApiError as e:
        # translate_errors chains simple-salesforce's exception, which has the HTTP status.
        if getattr(e.__cause__, "status", None) not in _REFUSED_STATUS:
            raise
        client.composite_refused = f"{e.code}: {e}"
        log.warning("the org refuses the Composite API; one object per API call from now on", code=e.code, error=str(e))
        return None


def _parse(content: bytes, refs: Mapping[str, str]) -> dict[str, Subresponse]:
    try:
        entries = entries_with_raw(content, "compositeResponse", "body")
    except ValueError as e:
        raise SalesforceDataError(f"The Composite answer is not a compositeResponse list ({e}).") from e
    answers: dict[str, Subresponse] = {}
    for entry, raw in entries:
        name = refs.get(str(entry.get("referenceId")))
        status = entry.get("httpStatusCode")
        if name is None or not isinstance(status, int):
            raise SalesforceDataError(f"The Composite answer has an entry sfbackup did not ask for: {entry!r:.300}")
        answers[name] = Subresponse(status, entry.get("body"), raw)
    missing = [name for ref, name in refs.items() if name not in answers]
    if missing:
        raise SalesforceDataError(f"The Composite answer has no subresponse for {', '.join(missing)}.")
    return answers


def _outcome(client: OrgClient, name: str, sub: Subresponse) -> Described:
    """What the direct describe of ``name`` would have returned or raised, from its subresponse."""
    if sub.status < 300:
        if not isinstance(sub.body, dict) or not isinstance(sub.body.get("fields"), list):
            return SalesforceDataError(f"The describe of {name} has no field list.", object_name=name)
        return RawBody(sub.raw, sub.body)
    return error_of(client, name, _url(client, name), sub)


def error_of(client: OrgClient, name: str, url: str, sub: Subresponse) -> SalesforceError:
    """The error the direct call of ``url`` raises for this (non-2xx) subresponse's status and body."""
    error = _BY_STATUS.get(sub.status, SalesforceGeneralError)
    try:
        with translate_errors(name, can_relogin=client.credentials.can_relogin):
            raise error(f"{client.instance_url}{url}", sub.status, name, sub.body)
    except SalesforceError as e:
        return e
    raise AssertionError("unreachable")  # pragma: no cover
