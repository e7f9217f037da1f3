"""Errors of the Salesforce side, translated from simple-salesforce and requests in one place
(``plugin.salesforce.translate.translate_errors``).

    PluginError
    └── SalesforceError             .code, .retryable, .object_name
        ├── SalesforceAuthError     login refused, or the session expired and cannot be renewed
        ├── SalesforceApiError      Salesforce answered with an error body (errorCode in .code)
        │   ├── SalesforceNotFoundError   HTTP 404: no such record, body or resource
        │   └── SalesforceLimitError      daily API requests used up, or down to the reserve (retryable)
        ├── SalesforceNetworkError  timeouts, dropped connections, TLS failures (retryable)
        ├── SalesforceDataError     a body or file that does not match what Salesforce promised
        ├── ExportFailedError       files or objects could not be exported (the backup is incomplete)
        └── ExportStoppedError      the caller asked the export to stop (a cancel, a lost lease)
"""

from __future__ import annotations

from plugin.errors import PluginError


class SalesforceError(PluginError):
    """Anything the org or the network did. ``retryable`` says whether the same job may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "SALESFORCE_ERROR",
        retryable: bool = False,
        object_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.object_name = object_name


class SalesforceAuthError(SalesforceError):
    """Credentials refused or session gone."""


class SalesforceApiError(SalesforceError):
    """An error body from the REST API."""


class SalesforceNotFoundError(SalesforceApiError):
    """The resource is not there (HTTP 404)."""


class SalesforceLimitError(SalesforceApiError):
    """REQUEST_LIMIT_EXCEEDED, or the API reserve reached: stop the job cleanly, resume later."""


class SalesforceNetworkError(SalesforceError):
    """The request never got a complete answer."""


class SalesforceDataError(SalesforceError):
    """The org sent something inconsistent (a short file, a missing field)."""


class ExportFailedError(SalesforceError):
    """Files or objects could not be exported; the backup would be incomplete."""


class ExportStoppedError(SalesforceError):
    """The caller's ``should_stop`` said stop (a cancel, a lost lease): the export ends at once and
    leaves the partial folder as it is (a newer attempt may be writing it)."""


def stops_job(error: BaseException) -> bool:
    """Errors after which no other object can be exported either: stop (retryable, resume later), and
    touch nothing on the way out (a stop asked for by a cancel or a lost lease included)."""
    return isinstance(error, SalesforceLimitError | SalesforceAuthError | SalesforceNetworkError | ExportStoppedError)
