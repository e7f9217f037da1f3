"""CSV pages of a Bulk API 2.0 query job, as Salesforce writes them.

Every page starts with the header row (SELECT items, parent fields as `Account.Name`), every value
is quoted, null is an empty quoted value, booleans are `true`/`false`, datetimes are UTC with a
`Z` (`2024-01-31T12:00:00.000Z`), numbers keep their literal text. Rows are encoded in small
batches so a 50,000-row page streams without being built in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .query import Column
from .table import Record
from .values import Stamp, parse_datetime

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_BATCH = 500


def csv_value(kind: str, value: Any) -> str | None:
    """One value as Bulk CSV text (None stays None: the writer quotes it as "")."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind == "datetime":
        return _utc_z(value)
    return str(value)


def _utc_z(value: Any) -> str:
    text = str(value)
    if text.endswith("+0000") and len(text) == 28:  # already UTC with milliseconds: only the zone differs
        return text[:-5] + "Z"
    instant = value.instant if isinstance(value, Stamp) else parse_datetime(str(value))
    if instant is None:
        return str(value)
    utc = instant.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def csv_pages(
    columns: Sequence[Column], rows: Iterable[Record], *, delimiter: str, line_ending: str
) -> Iterator[bytes]:
    """The header and rows of one results page as UTF-8 chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_ending, quoting=csv.QUOTE_ALL)
    writer.writerow([c.header for c in columns])
    kinds = [(c.path.field.type, c.value) for c in columns]
    pending = 0
    for record in rows:
        writer.writerow([csv_value(kind, get(record)) for kind, get in kinds])
        pending += 1
        if pending >= _BATCH:
            yield _drain(buffer)
            pending = 0
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8", "replace")  # a lone surrogate cannot be UTF-8
