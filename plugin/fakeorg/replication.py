"""sObject Get Deleted / Get Updated (GET .../sobjects/{o}/deleted/?start=&end=, .../updated/).

Both round start and end down to the minute (Salesforce ignores seconds) and cover
start <= t < end. A record's time is its SystemModstamp (LastModifiedDate when the object has
none); for deleted records that is the deletion time. The fake never purges deletions, so
earliestDateAvailable is the earliest deletion it knows or `start`, whichever is earlier.
Salesforce only answers for the last 15 (deleted) / 30 (updated) days; the fake's data is
historical, so it answers for any window. Generated rows are not scanned blindly: deletions are
periodic and CreatedDate grows with the index, so only candidate rows are looked at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from .errors import ApiError
from .generators import format_datetime
from .table import Record, SObjectTable
from .values import parse_datetime

MAX_IDS = 600_000


def _stamp_field(table: SObjectTable) -> str:
    return "SystemModstamp" if table.field("SystemModstamp") is not None else "LastModifiedDate"


def _window(start: str | None, end: str | None) -> tuple[int, int]:
    """(start, end) epoch seconds, floored to the minute.

    Raises:
        ApiError: a parameter is missing or unparsable, or the window is shorter than a minute.
    """
    bounds: list[int] = []
    for name, text in (("start", start), ("end", end)):
        if not text:
            raise ApiError(400, "MISSING_ARGUMENT", f"{name} was not specified")  # (unconfirmed wording)
        parsed = parse_datetime(text)
        if parsed is None:
            message = f"{name}: '{text}' is not a valid dateTime (use 2024-01-31T00:00:00+00:00)"
            raise ApiError(400, "INVALID_REPLICATION_DATE", message)  # (unconfirmed wording)
        bounds.append(int(parsed.timestamp()) // 60 * 60)
    if bounds[1] - bounds[0] < 60:
        message = "startDate must chronologically precede endDate by more than one minute"
        raise ApiError(400, "INVALID_REPLICATION_DATE", message)
    return bounds[0], bounds[1]


def _instant(record: Record, field: str) -> int | None:
    value = record.get(field)
    instant = getattr(value, "instant", None) or (parse_datetime(str(value)) if value else None)
    return int(instant.timestamp()) if isinstance(instant, dt.datetime) else None


def _rows(table: SObjectTable, generated: range) -> Iterator[Record]:
    for pos in range(table.file_count):
        yield table.row(pos)
    for index in generated:
        yield table.row(table.file_count + index)


def deleted(table: SObjectTable, start: str | None, end: str | None) -> dict[str, Any]:
    """The Get Deleted body: deletedRecords [{id, deletedDate}], earliestDateAvailable, latestDateCovered."""
    low, high = _window(start, end)
    field = _stamp_field(table)
    source = table.generated
    candidates = source.deleted_indexes(range(source.count)) if source is not None else range(0)
    found: list[dict[str, Any]] = []
    earliest = low  # the fake never purges its delete log: everything since `start` is there
    for record in _rows(table, candidates):
        when = _instant(record, field)
        if record.get("IsDeleted") is not True or when is None:
            continue
        earliest = min(earliest, when)
        if low <= when < high:
            found.append({"id": record.get("Id"), "deletedDate": format_datetime(when)})
        if len(found) > MAX_IDS:
            raise _too_many()
    return {
        "deletedRecords": found,
        "earliestDateAvailable": format_datetime(earliest // 60 * 60),
        "latestDateCovered": format_datetime(high),
    }


def updated(table: SObjectTable, start: str | None, end: str | None) -> dict[str, Any]:
    """The Get Updated body: ids of records created or changed in the window, latestDateCovered."""
    low, high = _window(start, end)
    field = _stamp_field(table)
    source = table.generated
    candidates = source.modstamp_candidates(low, high) if source is not None else range(0)
    ids: list[Any] = []
    for record in _rows(table, candidates):
        when = _instant(record, field)
        if record.get("IsDeleted") is True or when is None or not low <= when < high:
            continue
        ids.append(record.get("Id"))
        if len(ids) > MAX_IDS:
            raise _too_many()
    return {"ids": ids, "latestDateCovered": format_datetime(high)}


def _too_many() -> ApiError:
    message = f"More than {MAX_IDS} ids found; choose start and end dates that are closer together"
    return ApiError(400, "EXCEEDED_ID_LIMIT", message)  # code as documented, wording (unconfirmed)


def record_counts(tables: list[SObjectTable]) -> dict[str, Any]:
    """GET /limits/recordCount: rows a plain query returns (recycle bin excluded), per object."""
    counts = []
    for table in tables:
        in_files = sum(1 for p in range(table.file_count) if table.row(p).get("IsDeleted") is not True)
        source = table.generated
        extra = source.count - source.deleted_between(0, source.count) if source is not None else 0
        counts.append({"count": in_files + extra, "name": table.name})
    return {"sObjects": counts}
