"""How many API calls a backup made, and how many the org has left today before the reserve.

Salesforce reports the org's daily usage on every response (``Sforce-Limit-Info: api-usage=used/max``);
the connection feeds each response to ``ApiUsage.record`` (a requests response hook, so the
concurrent file downloads count too). The count is what the manifest reports; the usage is what
stops a backup cleanly before it eats the share of the daily limit the org's other integrations
need (``check_reserve``), and what keeps the Bulk prefetch from spending the last calls above it.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from plugin.salesforce.errors import SalesforceLimitError

_LOGIN_PATH = re.compile(r"^/services/(Soap/u/|oauth2/token)")
_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class ApiUsage:
    """The calls one client made and the org's usage from the last response that reported it.

    ``reserve`` is the share of the org's daily maximum the backup leaves to others (0: none).
    """

    def __init__(self, reserve: float) -> None:
        self.reserve = reserve
        self.calls = 0
        self.used: int | None = None  # from the last Sforce-Limit-Info: api-usage=used/max
        self.max: int | None = None
        self._lock = threading.Lock()  # the hook runs on every thread that sends

    def record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The response hook: count the call and keep the usage it reports."""
        # Salesforce counts neither logins (SOAP login, OAuth token) nor calls refused for their
        # session (401) toward the daily API limit; the manifest's count follows it.
        counted = response.status_code != 401 and not _LOGIN_PATH.match(urlsplit(response.request.url or "").path)
        usage = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        with self._lock:
            if counted:
                self.calls += 1
            if usage:
                self.used, self.max = int(usage.group(1)), int(usage.group(2))

    def _reserve(self) -> tuple[int, int, int] | None:
        """(calls left today, the org's daily maximum, the calls the reserve keeps); None while the
        usage is not known yet or no reserve is kept."""
        with self._lock:
            used, maximum = self.used, self.max
        if used is None or maximum is None or self.reserve <= 0:
            return None
        return maximum - used, maximum, math.ceil(maximum * self.reserve)

    @property
    def above_reserve(self) -> int | None:
        """Calls left before ``check_reserve`` stops the job (None: the usage is not known yet)."""
        found = self._reserve()
        return None if found is None else found[0] - found[2]

    def check_reserve(self) -> None:
        """Stop before the org's daily API requests fall below the reserve (share ``reserve``).

        Other integrations of the org need what is left, so the backup stops cleanly and can be
        resumed later.

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
                f"{reserve} ({self.reserve:.0%}, SFBACKUP_API_RESERVE) to the org's other users. Resume "
                "the job once the limit has room again (a rolling 24 hours): it fetches only what is missing.",
                code="API_RESERVE_REACHED",
                retryable=True,
            )
