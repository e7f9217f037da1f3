"""Errors of the fake org: one for a bad org folder, one for an API answer with an error body.

FakeOrgError        the org folder (or server set-up) is unusable; message says what to fix
└── FaultRuleError  a fault rule (in-process or POSTed to /__fake__/faults) is not valid
ApiError            becomes a Salesforce-style JSON error list with an HTTP status
"""

from __future__ import annotations


class FakeOrgError(Exception):
    """The org folder or the server configuration cannot be used; the message names the fix."""


class FaultRuleError(FakeOrgError):
    """A fault rule cannot be used; the message lists each problem and the field it is in."""


class ApiError(Exception):
    """An error the fake answers the way Salesforce would: `[{"message", "errorCode"}]`."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> list[dict[str, str]]:
        """The JSON body Salesforce sends for REST errors: a list with one entry."""
        return [{"message": self.message, "errorCode": self.error_code}]
