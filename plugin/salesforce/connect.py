"""One authenticated connection to an org: logins, the HTTP session, retries and the call count.

Everything that reaches Salesforce goes through ``OrgConnection``: ``send`` (one request with the
current session, errors translated by ``translate.py``), ``with_session_retry`` (logs in again
when a session expires and the credentials allow it) and ``with_retries`` (also runs a piece
again, a query page, a Bulk CSV page, a file body, whose connection dropped or timed out). Every
response feeds ``usage`` (``usage.py``). The REST resources a backup reads are in ``client.py``,
built on this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.util import exception_handler

from plugin.config import Credentials
from plugin.salesforce.errors import SalesforceAuthError, SalesforceNetworkError
from plugin.salesforce.literal import NumberLiteral
from plugin.salesforce.session import build_session
from plugin.salesforce.translate import SESSION_ONLY_HINT, translate_errors
from plugin.salesforce.usage import ApiUsage

T = TypeVar("T")
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


class ExactSalesforce(Salesforce):
    """Parses query bodies with every number kept as its literal text.

    simple-salesforce passes ``parse_float`` but not ``parse_int``, so ``-0`` would come back as ``0``.
    """

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return result.json(object_pairs_hook=dict, parse_float=NumberLiteral, parse_int=NumberLiteral)


class OrgConnection:
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
        self.session = build_session(
            extra_ca=extra_ca,
            timeout=timeout,
            login_url=credentials.login_url,
            login_domain=credentials.domain or "login",
        )
        self.usage = ApiUsage(api_reserve)
        self.relogins = 0
        self.composite_refused: str | None = None  # why, once the org refused a Composite request
        self._login_lock = threading.Lock()  # one re-login at a time (its requests run the hook)
        self._generation = 0  # bumped by every fresh login
        self.session.hooks["response"].append(self.usage.record)
        with translate_errors(can_relogin=credentials.can_relogin):
            self.sf = self._connect()

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
    def api_calls(self) -> int:
        """API calls this connection made, as Salesforce counts them (``ApiUsage.record``)."""
        return self.usage.calls

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
