"""The ``requests.Session`` the client owns: TLS trust, retries, a default timeout and where
logins go.

simple-salesforce has no retry layer and no default timeout; giving it our own session fixes both
for every call it makes (see the notes on simple-salesforce 1.12.10). It also hard-codes
``https://<domain>.salesforce.com`` for every login (SOAP, OAuth password, client credentials, JWT
bearer, and each re-login); ``SF_LOGIN_URL`` sends those requests elsewhere (a proxy, the fake org).
"""

from __future__ import annotations

import hashlib
import ssl
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from urllib3.util.ssl_ import create_urllib3_context

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds


class _TimeoutAdapter(HTTPAdapter):
    """Applies a default timeout to every request that does not bring its own, and verifies TLS with
    one ``ssl_context`` loaded once: requests hands urllib3 the CA bundle's path, which then parses the
    whole bundle again for every new connection (tens of ms for certifi's), the way requests' docs
    for ``build_connection_pool_key_attributes`` describe overriding."""

    def __init__(
        self, *, timeout: tuple[float, float], ssl_context: ssl.SSLContext | None = None, **kwargs: Any
    ) -> None:
        self._timeout = timeout
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def _ours(self, url: str, verify: Any) -> bool:
        return self._ssl_context is not None and verify is not False and url.lower().startswith("https")

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._ssl_context is not None and self._ours(request.url or "", verify):
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = self._ssl_context
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if self._ours(url, verify):
            conn.ca_certs = None  # the context holds them already
            conn.ca_cert_dir = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class _LoginAdapter(_TimeoutAdapter):
    """Rewrites the scheme and host of login requests to the configured login URL."""

    def __init__(self, *, login_url: str, **kwargs: Any) -> None:
        self._target = urlsplit(login_url)
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._target.scheme, self._target.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


def trust_bundle(extra_ca: Path | None) -> str:
    """A CA bundle path: certifi's public CAs, plus ``extra_ca`` when given.

    The combined file is content-addressed in the temp dir, so concurrent workers share it safely.
    """
    if extra_ca is None:
        return certifi.where()
    data = Path(certifi.where()).read_bytes() + b"\n" + extra_ca.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"sfbackup-ca-{digest}.pem"
    if not path.exists():
        tmp = path.with_suffix(f".{digest}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def build_session(
    *,
    extra_ca: Path | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    login_url: str | None = None,
    login_domain: str = "login",
) -> requests.Session:
    """A session that retries idempotent GETs on 5xx/429 and never waits forever.

    ``trust_env`` is off: REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the environment would otherwise
    override ``verify`` and the fake org's CA would not be trusted. With ``login_url``, requests
    for ``https://<login_domain>.salesforce.com/`` go to that origin instead.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = trust_bundle(extra_ca)
    context = create_urllib3_context()
    context.load_verify_locations(cafile=session.verify)
    retry = Retry(
        total=3,
        connect=3,
        read=2,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _TimeoutAdapter(timeout=timeout, ssl_context=context, max_retries=retry, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if login_url is not None:
        # requests picks the longest matching prefix, so only the login host takes this adapter.
        login = _LoginAdapter(login_url=login_url, timeout=timeout, ssl_context=context, max_retries=retry)
        session.mount(f"https://{login_domain.lower()}.salesforce.com/", login)
    return session


class _ReadingPostAdapter(_TimeoutAdapter):
    """For POSTs that only read (``retry_posts``)."""


def retry_posts(session: requests.Session, prefix: str) -> None:
    """POSTs to URLs under ``prefix`` only read (a Composite request of GET subrequests): retry them on
    5xx/429 as GETs are. urllib3 retries no POST by default, as one may have changed something."""
    base = session.get_adapter(prefix)
    if isinstance(base, _ReadingPostAdapter) or not isinstance(base, _TimeoutAdapter):
        return
    retry = base.max_retries
    methods = frozenset(retry.allowed_methods or ()) | {"POST"}
    reading = _ReadingPostAdapter(
        timeout=base._timeout, ssl_context=base._ssl_context, max_retries=retry.new(allowed_methods=methods)
    )
    session.mount(prefix, reading)
