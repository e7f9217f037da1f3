"""Every simple-salesforce and requests exception becomes a ``SalesforceError`` here, and nowhere else.

The export engine then needs one ``except`` per layer, and each message says what to do next
(which credentials to check, when to resume). The connection wraps every call in
``translate_errors``; the Composite describes (``composite.py``) run their subresponse errors
through it too, so an object gets the same error whichever way it was described.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError

from plugin.salesforce.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceError,
    SalesforceLimitError,
    SalesforceNetworkError,
    SalesforceNotFoundError,
)

_RETRYABLE_CODES = {"REQUEST_LIMIT_EXCEEDED", "QUERY_TIMEOUT", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}
SESSION_ONLY_HINT = (
    "The session in SF_ACCESS_TOKEN expired or is invalid: get a fresh access token "
    "(e.g. `sf org display --verbose`) and set SF_ACCESS_TOKEN, or configure SF_USERNAME + "
    "SF_PASSWORD so sfbackup can log in again by itself."
)


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


def retried_status(status: int) -> bool:
    """An HTTP status worth trying again later (5xx, 420, 429): what a retryable error, and a
    Composite subresponse to send again on its own, both are."""
    return status >= 500 or status in (420, 429)


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
            retryable=retried_status(e.status),
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
