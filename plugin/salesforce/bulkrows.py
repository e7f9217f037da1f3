"""Bulk API 2.0 results rows rewritten in the REST path's CSV form, at close to the speed of a copy.

Bulk CSV and our CSV differ only in form: every value unquoted where RFC 4180 allows (the csv
module's minimal quoting, as the REST path writes), CRLF row ends, and datetimes in the REST API's
form (``2024-01-31T12:00:00.000Z`` becomes ``2024-01-31T12:00:00.000+0000``, the same instant).

Parsing and writing every row with the csv module costs about 30 µs a row of 40 columns, ten times
what reading the bytes does, so most rows take a shorter road that gives the same cells. Salesforce
quotes every value, and a line ``"v1","v2",...,"vn"`` that holds exactly 2n quote characters and
splits on ``","`` into n parts cannot be read any other way: a deterministic CSV parser reads each
part up to its closing quote, sees the comma and opens the next field (no part holds a quote, so
none is an escaped one). Such a line is one whole record whose parts are its values; if it also
holds exactly n - 1 commas, no value holds a comma, quote or line break (a physical line has none),
so minimal quoting writes the values as they are, joined by commas (with commas and no other
special character, a value is only put in quotes, none to double). Every other line (a value with
a quote or line break, a line in another form, a one-column object, whose single empty value
minimal quoting writes as ``""``) goes through ``csv.reader``/``csv.writer`` as before, the reader
pulling further lines for a record that spans several. tests/salesforce/test_bulk_exactness.py
compares both roads with the csv module on any text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceDataError

BATCH_ROWS = 1000


def rest_datetime(value: str) -> str:
    """A Bulk datetime (``...T12:00:00.000Z``) in the REST form (``...T12:00:00.000+0000``)."""
    if len(value) == 24 and value[-1] == "Z" and value[10] == "T":
        return value[:-1] + "+0000"
    return value


class _Lines:
    """The page's lines, with one line handed back for ``csv.reader`` to start from."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.pending: str | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.pending
        if line is not None:
            self.pending = None
            return line
        return next(self.lines)


def convert_rows(
    fh: IO[str],
    columns: Sequence[str],
    datetime_columns: Sequence[int],
    sink: CsvSink,
    *,
    object_name: str,
    deleted_column: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Append one results page (text, read with ``newline=""``) to ``sink``; returns its rows and
    those with IsDeleted true.

    Raises:
        SalesforceDataError: the header is not the columns asked for, a row has the wrong width,
            or the page is not UTF-8 CSV.
    """
    width = len(columns)
    lines = iter(fh)
    slow = _Lines(lines)
    reader = csv.reader(slow, strict=True)
    scratch = io.StringIO()
    writer = csv.writer(scratch, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    quotes, commas = 2 * width, width - 1
    fast = width > 1
    stamps = tuple(datetime_columns)
    rows = deleted = 0
    out: list[str] = []
    try:
        header = next(reader, None)
        if header is None:
            return 0, 0
        if header != list(columns):
            raise SalesforceDataError(
                f"A Bulk results page of {object_name} has the columns {header[:5]}..., not the ones asked for.",
                object_name=object_name,
            )
        for line in lines:
            row: list[str] | None = None
            if fast and line[0] == '"' and line[-2:] == '"\n' and line.count('"') == quotes:
                row = line[1:-2].split('","')
                if len(row) != width:
                    row = None
            plain = row is not None and "\r" not in line
            if row is None:
                slow.pending = line
                row = next(reader)
                if len(row) != width:
                    raise SalesforceDataError(
                        f"A Bulk results row of {object_name} has {len(row)} values for {width} columns.",
                        object_name=object_name,
                    )
            for i in stamps:
                value = row[i]
                if len(value) == 24 and value[23] == "Z" and value[10] == "T":
                    row[i] = value[:23] + "+0000"
            if deleted_column is not None and row[deleted_column] == "true":
                deleted += 1
            if plain:
                if line.count(",") == commas:
                    out.append(",".join(row))
                else:  # values with commas, and no quote or line break: quoted as they are
                    out.append(",".join([f'"{v}"' if "," in v else v for v in row]))
            else:
                writer.writerow(row)
                out.append(scratch.getvalue()[:-2])
                scratch.seek(0)
                scratch.truncate()
            if len(out) >= BATCH_ROWS:
                sink.write_lines(out)
                rows += len(out)
                out = []
                if on_batch is not None:
                    on_batch(rows)
        sink.write_lines(out)
        rows += len(out)
    except (UnicodeDecodeError, csv.Error) as e:
        raise SalesforceDataError(f"A Bulk results page of {object_name} is not valid CSV: {e}") from e
    return rows, deleted


def convert_page(
    spool: Path,
    columns: Sequence[str],
    datetime_columns: Sequence[int],
    sink: CsvSink,
    *,
    object_name: str,
    deleted_column: int | None = None,
) -> tuple[int, int]:
    """``convert_rows`` of a page saved to a file."""
    with open(spool, encoding="utf-8", newline="") as fh:
        return convert_rows(fh, columns, datetime_columns, sink, object_name=object_name, deleted_column=deleted_column)
