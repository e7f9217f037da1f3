"""Deletions in an incremental window: ``data/<Object>.deleted.csv`` (Id, deletedDate) from Get Deleted.

``queryAll`` with the window already returns rows deleted in it while they are in the recycle bin
(``IsDeleted = true``); rows emptied from the recycle bin are gone from every query and only the
delete log (Get Deleted) still names them. Salesforce keeps that log for replicateable objects,
for 15 days at most: when it starts after the window, the manifest says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from plugin.salesforce.client import OrgClient
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceApiError
from plugin.salesforce.window import deleted_range, parse_instant

COLUMNS = ["Id", "deletedDate"]
NOT_REPLICATEABLE = (
    "not replicateable: Salesforce keeps no delete log for it; rows still in the recycle bin are in the CSV "
    "with IsDeleted = true"
)


def capture_deleted(
    client: OrgClient, name: str, *, since: str, end: str, data_dir: Path, compress: bool
) -> tuple[dict[str, Any], int]:
    """Write the object's deletions in the window; returns its manifest entry and the row count.

    A refusal (the object has no delete log after all, the window is too old) is recorded in the
    entry, not raised: the CSV's IsDeleted rows still hold what the recycle bin has.
    """
    start, stop = deleted_range(since, end)
    try:
        body = client.get_deleted(name, start=start, end=stop)
    except SalesforceApiError as e:
        return {"status": "not captured", "reason": str(e), "start": start, "end": stop}, 0
    rows = [r for r in body.get("deletedRecords") or [] if isinstance(r, dict)]
    sink = CsvSink(data_dir / f"{name}.deleted.csv", COLUMNS, compress=compress)
    try:
        for row in sorted(rows, key=lambda r: (str(r.get("deletedDate")), str(r.get("id")))):
            sink.write({"Id": row.get("id"), "deletedDate": row.get("deletedDate")})
    except BaseException:
        sink.abort()
        raise
    sha = sink.close()
    entry: dict[str, Any] = {
        "status": "captured",
        "file": f"data/{sink.path.name}",
        "records": sink.rows,
        "sha256": sha,
        "start": start,
        "end": stop,
        "earliest_date_available": body.get("earliestDateAvailable"),
        "latest_date_covered": body.get("latestDateCovered"),
    }
    earliest = body.get("earliestDateAvailable")
    if isinstance(earliest, str) and parse_instant(earliest) > parse_instant(start):
        entry["note"] = (
            f"the delete log begins at {earliest}, after the window start: deletions before it are missing "
            "unless their rows are still in the recycle bin (then they are in the CSV)"
        )
    return entry, sink.rows


def capture_window(
    client: OrgClient,
    names: Iterable[str],
    replicateable: frozenset[str],
    *,
    since: str,
    end: str,
    data_dir: Path,
    compress: bool,
) -> dict[str, dict[str, Any]]:
    """Each object's ``deleted`` manifest entry for the window, in order: captured from the delete
    log when it is replicateable, else why not."""
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in replicateable:
            found[name] = {"status": "not captured", "reason": NOT_REPLICATEABLE}
            continue
        found[name], _ = capture_deleted(client, name, since=since, end=end, data_dir=data_dir, compress=compress)
    return found
