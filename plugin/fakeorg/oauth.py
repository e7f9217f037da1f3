"""The OAuth 2.0 token endpoint (POST /services/oauth2/token): password, client credentials,
JWT bearer and refresh token grants, with the error bodies Salesforce sends.

Errors are HTTP 400 `{"error", "error_description"}`; simple-salesforce raises
`SalesforceAuthenticationFailed(error, error_description)` for them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .auth import Credentials
from .state import ServerState

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audiences Salesforce accepts in a JWT bearer assertion (plus the fake's own URL).
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]


class OAuthError(Exception):
    """A refused grant, answered as Salesforce words it."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def answer(self) -> TokenAnswer:
        return TokenAnswer(400, {"error": self.error, "error_description": self.description})


_BAD_CLIENT_ID = OAuthError("invalid_client_id", "client identifier invalid")
_BAD_CLIENT = OAuthError("invalid_client", "invalid client credentials")
_BAD_USER = OAuthError("invalid_grant", "authentication failure")
_BAD_ASSERTION = OAuthError("invalid_grant", "invalid assertion")


def token(
    form: Mapping[str, str],
    authorization: str,
    *,
    creds: Credentials,
    state: ServerState,
    instance_url: str,
    org_id: str,
) -> TokenAnswer:
    """Answer one token request (form fields and the Authorization header)."""
    grant = form.get("grant_type", "")
    try:
        if grant == "password":
            _check_client(creds, form.get("client_id", ""), form.get("client_secret", ""))
            if form.get("username") != creds.username or not creds.password_matches(form.get("password", "")):
                raise _BAD_USER
        elif grant == "client_credentials":
            client_id, secret = _basic(authorization) or (form.get("client_id", ""), form.get("client_secret", ""))
            _check_client(creds, client_id, secret)
        elif grant == JWT_BEARER:
            _check_assertion(creds, form.get("assertion", ""), instance_url)
        elif grant == "refresh_token":
            if form.get("client_id") != creds.client_id:
                raise _BAD_CLIENT_ID
            if "client_secret" in form and not _same(form["client_secret"], creds.client_secret):
                raise _BAD_CLIENT
            if not _same(form.get("refresh_token", ""), creds.refresh_token):
                raise OAuthError("invalid_grant", "expired access/refresh token")
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
    except OAuthError as exc:
        return exc.answer()
    state.count_login()
    return TokenAnswer(200, _success(creds, state.issue_token(), instance_url, org_id))


def _same(given: str, expected: str) -> bool:
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


def _check_client(creds: Credentials, client_id: str, secret: str) -> None:
    if client_id != creds.client_id:
        raise _BAD_CLIENT_ID
    if not _same(secret, creds.client_secret):
        raise _BAD_CLIENT


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _BAD_CLIENT from None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _check_assertion(creds: Credentials, assertion: str, instance_url: str) -> None:
    """RS256 signature by a registered key, then iss, aud, sub and exp as Salesforce checks them."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _BAD_ASSERTION from None
    if claims.get("iss") != creds.client_id:
        raise _BAD_CLIENT_ID
    audiences = [*JWT_AUDIENCES, instance_url]
    for key in creds.jwt_keys:
        try:
            claims = jwt.decode(
                assertion,
                key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.PyJWTError:
            raise _BAD_ASSERTION from None
        if claims.get("sub") != creds.username:
            raise _BAD_ASSERTION
        return
    raise _BAD_ASSERTION


def _success(creds: Credentials, access_token: str, instance_url: str, org_id: str) -> dict[str, Any]:
    issued_at = str(int(time.time() * 1000))
    identity = f"{instance_url}/id/{org_id}/{creds.user_id}"
    signature = hmac.new(creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    return {
        "access_token": access_token,
        "instance_url": instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
