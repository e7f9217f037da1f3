"""Which org a backup belongs to: ``OrgIdentity``, and the org id a session token already names.

The org id names the backup folder and the manifest. A session token starts with it, so the job
runtime can name the folder without a call to the org, and ``OrgClient.identity`` still knows the
org when the Organization query returns no row. Kept apart from the client so that reading a
token needs no connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ORG_ID_IN_TOKEN = re.compile(r"^(00D[0-9A-Za-z]{12})!")


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
