"""A `requests.Session` for code that talks to the fake directly (simple-salesforce in tests):
it trusts only the fake's CA and sends every `https://*.salesforce.com` request (the login URLs
simple-salesforce hard-codes) to the fake. The product itself uses SF_LOGIN_URL instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class SalesforceLoginRedirect(HTTPAdapter):
    """Rewrites `https://<anything>.salesforce.com/...` to the fake's origin; other URLs pass."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        self._target = urlsplit(target)
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit((self._target.scheme, self._target.netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


def client_session(instance_url: str, ca_bundle: str) -> requests.Session:
    """A session trusting `ca_bundle` only, with logins redirected to `instance_url`.

    `trust_env` is off so REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE cannot replace the CA.
    """
    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False
    session.mount("https://", SalesforceLoginRedirect(instance_url))
    return session
