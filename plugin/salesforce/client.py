"""A thin client over simple-salesforce: our auth modes in, our errors out, bodies streamed.

Every simple-salesforce and requests exception is translated in ``translate_errors`` and nowhere
else, so the export engine only ever sees ``SalesforceError``. Resilience lives here too:
``with_session_retry`` logs in again when a session expires (when the credentials allow it),
``with_retries`` also runs a piece again (a query page, a Bulk CSV page, a file body) whose
connection dropped or timed out, and every response's ``Sforce-Limit-Info`` keeps the API usage
current so the export stops before the org's daily limit (``check_api_reserve``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError
from simple_salesforce.util import exception_handler

from plugin.config import Credentials
from plugin.salesforce.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceDataError,
    SalesforceError,
    SalesforceLimitError,
    SalesforceNetworkError,
    SalesforceNotFoundError,
)
from plugin.salesforce.literal import NumberLiteral
from plugin.salesforce.session import build_session

_LOGIN_PATH = re.compile(r"^/services/(Soap/u/|oauth2/token)")
_ORG_ID_IN_TOKEN = re.compile(r"^(00D[0-9A-Za-z]{12})!")
_RETRYABLE_CODES = {"REQUEST_LIMIT_EXCEEDED", "QUERY_TIMEOUT", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}
_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
CHUNK = 1 << 20
URL_BUDGET = 8000  # characters of one recordCount URL (well under the 16,384-byte URI limit)
T = TypeVar("T")
SESSION_ONLY_HINT = (
    "The session in SF_ACCESS_TOKEN expired or is invalid: get a fresh access token "
    "(e.g. `sf org display --verbose`) and set SF_ACCESS_TOKEN, or configure SF_USERNAME + "
    "SF_PASSWORD so sfbackup can log in again by itself."
)
log = structlog.get_logger("sfbackup.salesforce")


@dataclass(frozen=True)
class RetryPolicy:
    """How often one piece (a page, a CSV page, a file) is tried again after a dropped connection.

    HTTP 5xx and 429 are retried below this, by urllib3 in the session (``session.py``).
    """

    attempts: int = 4
    backoff: float = 0.5  # seconds before the second try, doubled each time
    backoff_max: float = 8.0
    relogins: int = 3  # fresh sessions in a row for one piece before giving up


class Writable(Protocol):
    """Where a downloaded body goes: a file, or a wrapper that also hashes what passes."""

    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class OrgIdentity:
    org_id: str
    name: str | None
    instance_url: str


def to18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character Salesforce Id."""
    if len(id15) != 15:
        return id15
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix += alphabet[bits]
    return id15 + suffix


def org_id_from_token(token: str | None) -> str | None:
    """Salesforce session ids start with the 15-character org id followed by ``!``."""
    match = _ORG_ID_IN_TOKEN.match(token or "")
    return to18(match.group(1)) if match else None


def _error_body(exc: SimpleSalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or "UNKNOWN"), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "UNKNOWN"), str(
            content.get("message") or content.get("error_description") or ""
        )
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    return f"HTTP_{exc.status}", re.sub(r"\s+", " ", text)[:300]


def _json_or_bytes(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.content


@contextmanager
def translate_errors(object_name: str | None = None, *, can_relogin: bool = True) -> Iterator[None]:
    """Map simple-salesforce and requests exceptions to ``SalesforceError`` (the one place that does)."""
    try:
        yield
    except SalesforceError:
        raise
    except SalesforceAuthenticationFailed as e:
        raise SalesforceAuthError(
            f"Salesforce refused the login ({e.code}: {e.auth_message}). Check the SF_* credentials.",
            code=str(e.code),
            object_name=object_name,
        ) from e
    except SalesforceExpiredSession as e:
        hint = "The session expired and could not be renewed." if can_relogin else SESSION_ONLY_HINT
        raise SalesforceAuthError(hint, code="INVALID_SESSION_ID", object_name=object_name) from e
    except SalesforceResourceNotFound as e:
        code, message = _error_body(e)
        raise SalesforceNotFoundError(f"{code}: {message}".strip(), code=code, object_name=object_name) from e
    except (SalesforceMalformedRequest, SalesforceRefusedRequest) as e:
        code, message = _error_body(e)
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise SalesforceLimitError(
                f"{code}: {message} The org has used up its daily API requests; the job stopped cleanly. "
                "Resume it once the limit has room again (a rolling 24 hours): it fetches only what is missing.",
                code=code,
                retryable=True,
                object_name=object_name,
            ) from e
        raise SalesforceApiError(
            f"{code}: {message}".strip(),
            code=code,
            retryable=code in _RETRYABLE_CODES,
            object_name=object_name,
        ) from e
    except SalesforceGeneralError as e:
        code, message = _error_body(e)
        raise SalesforceApiError(
            f"Salesforce answered HTTP {e.status}: {message}",
            code=code,
            retryable=e.status >= 500 or e.status in (420, 429),
            object_name=object_name,
        ) from e
    except SimpleSalesforceError as e:
        code, message = _error_body(e)
        raise SalesforceApiError(f"{code}: {message}", code=code, object_name=object_name) from e
    except requests.exceptions.SSLError as e:
        raise SalesforceNetworkError(
            f"TLS verification failed talking to Salesforce ({e}). If the org uses a private CA "
            "(such as the fake org), set SFBACKUP_CA_BUNDLE to its CA file.",
            code="TLS_ERROR",
            object_name=object_name,
        ) from e
    except requests.exceptions.ConnectionError as e:
        raise SalesforceNetworkError(
            f"Could not connect to Salesforce ({type(e).__name__}: {e}). Check that SF_INSTANCE_URL (or "
            "SF_LOGIN_URL / SF_DOMAIN for logins) names the org and that this machine can reach it; the job "
            "can be resumed once it can.",
            code="NETWORK_ERROR",
            retryable=True,
            object_name=object_name,
        ) from e
    except requests.exceptions.RequestException as e:
        raise SalesforceNetworkError(
            f"Network error talking to Salesforce: {type(e).__name__}: {e}",
            code="NETWORK_ERROR",
            retryable=True,
            object_name=object_name,
        ) from e


class ExactSalesforce(Salesforce):
    """Parses query bodies with every number kept as its literal text.

    simple-salesforce passes ``parse_float`` but not ``parse_int``, so ``-0`` would come back as ``0``.
    """

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return result.json(object_pairs_hook=dict, parse_float=NumberLiteral, parse_int=NumberLiteral)


@dataclass(frozen=True)
class RawBody:
    """A JSON body as Salesforce sent it (saved byte for byte) and its parsed form (for planning)."""

    raw: bytes
    data: dict[str, Any]


class OrgClient:
    """One authenticated connection to an org, owning its HTTP session.

    Thread-safe for the calls file downloads make concurrently (``send``, ``with_retries``).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_version: str,
        extra_ca: Path | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        retry: RetryPolicy | None = None,
        api_reserve: float = 0.10,
    ) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.retry = retry or RetryPolicy()
        self.api_reserve = api_reserve
        self.session = build_session(
            extra_ca=extra_ca,
            timeout=timeout,
            login_url=credentials.login_url,
            login_domain=credentials.domain or "login",
        )
        self.api_calls = 0
        self.api_used: int | None = None  # from the last Sforce-Limit-Info: api-usage=used/max
        self.api_max: int | None = None
        self.relogins = 0
        self.composite_refused: str | None = None  # why, once the org refused a Composite request
        self._lock = threading.Lock()  # counters and usage (taken in the response hook)
        self._login_lock = threading.Lock()  # one re-login at a time (its requests run the hook)
        self._generation = 0  # bumped by every fresh login
        self.session.hooks["response"].append(self._count)
        with translate_errors(can_relogin=credentials.can_relogin):
            self.sf = self._connect()

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # Salesforce counts neither logins (SOAP login, OAuth token) nor calls refused for their
        # session (401) toward the daily API limit; the manifest's count follows it.
        counted = response.status_code != 401 and not _LOGIN_PATH.match(urlsplit(response.request.url or "").path)
        usage = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        with self._lock:
            if counted:
                self.api_calls += 1
            if usage:
                self.api_used, self.api_max = int(usage.group(1)), int(usage.group(2))

    def _connect(self) -> Salesforce:
        c = self.credentials
        common: dict[str, Any] = {
            "session": self.session,
            "version": self.api_version,
            "parse_float": NumberLiteral,
        }
        if c.kind == "session":
            return ExactSalesforce(instance_url=c.instance_url, session_id=c.access_token, **common)
        if c.kind == "password":
            return ExactSalesforce(
                username=c.username,
                password=c.password,
                security_token=c.security_token or "",
                domain=c.domain,
                **common,
            )
        if c.kind == "client_credentials":
            return ExactSalesforce(consumer_key=c.client_id, consumer_secret=c.client_secret, domain=c.domain, **common)
        return ExactSalesforce(
            username=c.username,
            consumer_key=c.client_id,
            privatekey_file=c.jwt_key_file,
            domain=c.domain,
            **common,
        )

    @property
    def instance_url(self) -> str:
        return f"https://{self.sf.sf_instance}"

    @property
    def base_url(self) -> str:
        """``https://<instance>/services/data/vNN.N/`` of the current session."""
        return str(self.sf.base_url)

    @property
    def logins(self) -> int:
        """Logins this client made: the first one (none with a session token) and every re-login."""
        return (0 if self.credentials.kind == "session" else 1) + self.relogins

    def close(self) -> None:
        self.session.close()

    # -- sessions and retries -------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """The bearer header of the current session (read it at call time: a re-login changes it)."""
        return {"Authorization": f"Bearer {self.sf.session_id}"}

    def refresh_session(self, *, seen: int | None = None) -> None:
        """Log in again. With ``seen`` (the generation a caller's failed call used), threads that saw
        the same expired session share one login.

        Raises:
            SalesforceAuthError: session-only credentials (nothing to log in with), or the login is refused.
        """
        if not self.credentials.can_relogin:
            raise SalesforceAuthError(SESSION_ONLY_HINT, code="INVALID_SESSION_ID")
        with self._login_lock:
            if seen is not None and seen != self._generation:
                return
            with translate_errors(can_relogin=True):
                self.sf = self._connect()
            self._generation += 1
            self.relogins += 1
        log.info("logged in again after an expired session", relogins=self.relogins)

    def with_session_retry(self, fn: Callable[[], T], *, object_name: str | None = None) -> T:
        """Run ``fn``; when Salesforce says the session expired, log in again and run it again.

        This is the re-login seam for every path (query pages, Bulk jobs, file bodies): ``fn`` must
        read the session when it runs (``send``, ``auth_headers``), so the retried call carries the
        new one. Session-only credentials get a ``SalesforceAuthError`` saying how to refresh.
        Requests exceptions raised inside ``fn`` (a body read that failed) are translated here.

        Raises:
            SalesforceAuthError: no re-login possible, refused, or ``RetryPolicy.relogins`` in a row did not help.
        """
        last: SalesforceAuthError | None = None
        for _ in range(self.retry.relogins + 1):
            generation = self._generation
            try:
                with translate_errors(object_name, can_relogin=self.credentials.can_relogin):
                    return fn()
            except SalesforceAuthError as e:
                if e.code != "INVALID_SESSION_ID" or not self.credentials.can_relogin:
                    raise
                last = e
                self.refresh_session(seen=generation)
        raise SalesforceAuthError(
            f"Salesforce refused {self.retry.relogins} fresh sessions in a row; check that the user may use "
            "the API and that its sessions are not revoked at once (session policies).",
            code="INVALID_SESSION_ID",
            object_name=object_name,
        ) from last

    def with_retries(self, fn: Callable[[], T], *, object_name: str | None = None) -> T:
        """``with_session_retry``, and a dropped connection or timeout runs ``fn`` again with backoff.

        Only for idempotent pieces: a query page fetched again from the same ``nextRecordsUrl``, a
        Bulk CSV page from the same locator, a file body (``fn`` must start its output afresh).

        Raises:
            SalesforceNetworkError: still failing after ``RetryPolicy.attempts`` tries.
        """
        delay = self.retry.backoff
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return self.with_session_retry(fn, object_name=object_name)
            except SalesforceNetworkError as e:
                if not e.retryable or attempt >= self.retry.attempts:
                    raise
                log.warning("retrying after a network error", object=object_name, attempt=attempt, error=str(e))
                time.sleep(delay)
                delay = min(delay * 2, self.retry.backoff_max)
        raise AssertionError("unreachable")  # pragma: no cover

    def send(
        self,
        method: str,
        url: str,
        *,
        object_name: str | None,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request with the current session; an error status raises the translated error.

        ``url`` may be absolute, a path (``/services/...``) or relative to ``base_url``.
        """
        if url.startswith("/"):
            url = f"{self.instance_url}{url}"
        elif "://" not in url:
            url = f"{self.base_url}{url}"
        with translate_errors(object_name, can_relogin=self.credentials.can_relogin):
            response = self.session.request(
                method, url, headers={**self.auth_headers(), **(headers or {})}, stream=stream, **kwargs
            )
            if response.status_code >= 300:
                try:
                    exception_handler(response, object_name or url)
                finally:
                    response.close()
        return response

    # -- API usage ------------------------------------------------------------------------------
    @property
    def api_remaining(self) -> int | None:
        with self._lock:
            return None if self.api_used is None or self.api_max is None else self.api_max - self.api_used

    def _reserve(self) -> tuple[int, int, int] | None:
        """(calls left today, the org's daily maximum, the calls the reserve keeps); None while the
        usage is not known yet or no reserve is kept."""
        with self._lock:
            used, maximum = self.api_used, self.api_max
        if used is None or maximum is None or self.api_reserve <= 0:
            return None
        return maximum - used, maximum, math.ceil(maximum * self.api_reserve)

    @property
    def api_above_reserve(self) -> int | None:
        """Calls left before ``check_api_reserve`` stops the job (None: the usage is not known yet)."""
        found = self._reserve()
        return None if found is None else found[0] - found[2]

    def check_api_reserve(self) -> None:
        """Stop before the org's daily API requests fall below the reserve (share ``api_reserve``).

        Salesforce reports the usage on every response (``Sforce-Limit-Info``); other integrations
        of the org need what is left, so the backup stops cleanly and can be resumed later.

        Raises:
            SalesforceLimitError: code ``API_RESERVE_REACHED``, retryable.
        """
        found = self._reserve()
        if found is None:
            return
        left, maximum, reserve = found
        if left <= reserve:
            raise SalesforceLimitError(
                f"Stopped cleanly with {left} of the org's {maximum} daily API requests left: sfbackup leaves "
                f"{reserve} ({self.api_reserve:.0%}, SFBACKUP_API_RESERVE) to the org's other users. Resume "
                "the job once the limit has room again (a rolling 24 hours): it fetches only what is missing.",
                code="API_RESERVE_REACHED",
                retryable=True,
            )

    # -- REST resources -------------------------------------------------------------------------
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
            self.check_api_reserve()
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
            self.check_api_reserve()
            if soql is not None:
                resource = "queryAll/" if include_deleted else "query/"
                response = self.send("GET", resource, object_name=object_name, headers=options, params={"q": soql})
            else:
                response = self.send("GET", str(next_url), object_name=object_name, headers=options)
            return json.loads(response.content, parse_float=NumberLiteral, parse_int=NumberLiteral)

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
        self.check_api_reserve()
        url = f"{self.instance_url}{url_path}"
        headers = {"Authorization": f"Bearer {self.sf.session_id}"}
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
