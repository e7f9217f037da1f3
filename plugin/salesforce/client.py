"""A thin client over simple-salesforce: our auth modes in, our errors out, bodies streamed.

Every simple-salesforce and requests exception is translated in ``translate_errors`` and nowhere
else, so the export engine only ever sees ``SalesforceError``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests
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
    SalesforceNetworkError,
    SalesforceNotFoundError,
)
from plugin.salesforce.literal import NumberLiteral
from plugin.salesforce.session import build_session

_LOGIN_PATH = re.compile(r"^/services/(Soap/u/|oauth2/token)")
_ORG_ID_IN_TOKEN = re.compile(r"^(00D[0-9A-Za-z]{12})!")
_RETRYABLE_CODES = {"REQUEST_LIMIT_EXCEEDED", "QUERY_TIMEOUT", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}
CHUNK = 1 << 20


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
        hint = (
            "The session expired and could not be renewed."
            if can_relogin
            else "The session in SF_ACCESS_TOKEN expired or is invalid: get a fresh access token "
            "(e.g. `sf org display --verbose`) and set SF_ACCESS_TOKEN, or configure SF_USERNAME + "
            "SF_PASSWORD so sfbackup can log in again by itself."
        )
        raise SalesforceAuthError(hint, code="INVALID_SESSION_ID", object_name=object_name) from e
    except SalesforceResourceNotFound as e:
        code, message = _error_body(e)
        raise SalesforceNotFoundError(f"{code}: {message}".strip(), code=code, object_name=object_name) from e
    except (SalesforceMalformedRequest, SalesforceRefusedRequest) as e:
        code, message = _error_body(e)
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
    """One authenticated connection to an org, owning its HTTP session."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_version: str,
        extra_ca: Path | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.session = build_session(
            extra_ca=extra_ca,
            timeout=timeout,
            login_url=credentials.login_url,
            login_domain=credentials.domain or "login",
        )
        self.api_calls = 0
        self.logins = 0 if credentials.kind == "session" else 1
        self._login_lock = threading.Lock()
        self.session.hooks["response"].append(self._count)
        with translate_errors(can_relogin=credentials.can_relogin):
            self.sf = self._connect()

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # Salesforce counts neither logins (SOAP login, OAuth token) nor calls refused for their
        # session (401) toward the daily API limit; the manifest's count follows it.
        if response.status_code != 401 and not _LOGIN_PATH.match(urlsplit(response.request.url or "").path):
            self.api_calls += 1

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
        return Salesforce(
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
    def session_token(self) -> str:
        """The session id requests carry now (changes when ``renew_session`` logs in again)."""
        return str(self.sf.session_id)

    def renew_session(self, stale_token: str) -> None:
        """Log in again after a 401 on ``stale_token``; thread-safe, one login per expiry.

        Callers that saw the same expired token at once (parallel downloads) share one login: a
        caller whose token was already replaced just retries with the new one. For the paths
        simple-salesforce does not refresh itself (blob downloads, Bulk 2.0).

        Raises:
            SalesforceAuthError: session-only credentials (with how to refresh them), or the login
                was refused.
        """
        with self._login_lock:
            if self.session_token != stale_token:
                return
            if not self.credentials.can_relogin:
                with translate_errors(can_relogin=False):
                    raise SalesforceExpiredSession(self.instance_url, 401, "session", b"INVALID_SESSION_ID")
            with translate_errors(can_relogin=True):
                self.sf = self._connect()
            self.logins += 1

    def close(self) -> None:
        self.session.close()

    def identity(self) -> OrgIdentity:
        """The org's id and name, from the Organization record."""
        with translate_errors("Organization", can_relogin=self.credentials.can_relogin):
            result = self.sf.query("SELECT Id, Name FROM Organization LIMIT 1")
        records = result.get("records") or []
        if not records:
            token_org = org_id_from_token(self.credentials.access_token)
            if token_org:
                return OrgIdentity(token_org, None, self.instance_url)
            raise SalesforceDataError("The Organization query returned no record; cannot tell which org this is.")
        return OrgIdentity(str(records[0]["Id"]), records[0].get("Name"), self.instance_url)

    def _get_json(self, path: str, object_name: str | None) -> RawBody:
        """GET a REST resource under the versioned base URL, keeping the body's exact bytes."""
        url = f"{self.sf.base_url}{path}"
        with translate_errors(object_name, can_relogin=self.credentials.can_relogin):
            response = self.session.get(url, headers=self.sf.headers)
            if response.status_code >= 300:
                exception_handler(response, object_name or path)
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

    def get_deleted(self, object_name: str, *, start: str, end: str) -> dict[str, Any]:
        """sObject Get Deleted: ids deleted in [start, end) (Salesforce ignores seconds) from the
        delete log, which also holds rows already purged from the recycle bin."""
        query = urlencode({"start": start, "end": end})
        return self._get_json(f"sobjects/{object_name}/deleted/?{query}", object_name).data

    def limits(self) -> dict[str, Any]:
        with translate_errors(can_relogin=self.credentials.can_relogin):
            body = self.sf.limits()
        return body if isinstance(body, dict) else {}

    def query(self, soql: str, *, object_name: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of ``soql``, page by page (``query_all_iter`` never holds the object in memory)."""
        pages = self.sf.query_all_iter(soql, include_deleted=include_deleted)
        while True:
            with translate_errors(object_name, can_relogin=self.credentials.can_relogin):
                try:
                    record = next(pages)
                except StopIteration:
                    return
            yield record

    def download(self, url_path: str, out: Writable, *, object_name: str) -> tuple[int, str]:
        """Stream a blob (``/services/data/vNN.N/sobjects/<Obj>/<Id>/<Field>``) into ``out``.

        Returns (bytes written, sha256 hex). The body never sits in memory whole.
        """
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
