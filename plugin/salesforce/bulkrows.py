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
    """The page's lines, with lines handed back (in order) for ``csv.reader`` or the loop to read again."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.pending: list[str] = []  # reversed: the next line is last

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pending:
            return self.pending.pop()
        return next(self.lines)

    def give_back(self, lines: list[str]) -> None:
        self.pending.extend(reversed(lines))


def _quoted(value: str) -> str:
    """Minimal quoting of a value that holds no quote: quoted if it holds a comma, CR or LF."""
    return f'"{value}"' if "," in value or "\n" in value or "\r" in value else value


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
    lines = _Lines(iter(fh))
    reader = csv.reader(lines, strict=True)
    quotes, commas = 2 * width, width - 1
    fast = width > 1
    stamps = tuple(datetime_columns)
    first = sink.rows
    deleted = 0
    next_batch = BATCH_ROWS
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
            record = line
            if fast and line[0] == '"':
                found = line.count('"')
                taken: list[str] | None = None
                if found < quotes:
                    # A value with a line break: gather its lines until the record's quotes are all there.
                    taken = [line]
                    for more in lines:
                        taken.append(more)
                        found += more.count('"')
                        if found >= quotes:
                            break
                    record = "".join(taken)
                if found == quotes and record[-2:] == '"\n':
                    row = record[1:-2].split('","')
                    if len(row) != width:
                        row = None
                if row is None and taken is not None:
                    lines.give_back(taken[1:])  # not a record of that form: the csv module reads them
                    record = line
            if row is None:
                # Quotes inside values (or another form): the csv module reads the record, however many lines.
                lines.give_back([line])
                row = next(reader)
                if len(row) != width:
                    raise SalesforceDataError(
                        f"A Bulk results row of {object_name} has {len(row)} values for {width} columns.",
                        object_name=object_name,
                    )
                plain = False
            else:
                plain = True
            for i in stamps:
                value = row[i]
                if len(value) == 24 and value[23] == "Z" and value[10] == "T":
                    row[i] = value[:23] + "+0000"
            if deleted_column is not None and row[deleted_column] == "true":
                deleted += 1
            if plain:
                # Exactly two quotes a value, all of them the record's own: no value holds a quote.
                # (a lone CR ends a physical line when read with newline="", so a single line holds none)
                if record is line and line.count(",") == commas:
                    out.append(",".join(row))
                else:  # commas or line breaks inside values: those are quoted, there is no quote to double
                    out.append(",".join([_quoted(v) for v in row]))
            else:
                sink.write_lines(out)
                out = []
                sink.write_cells([row])
            if sink.rows + len(out) - first >= next_batch:
                sink.write_lines(out)
                out = []
                next_batch += BATCH_ROWS
                if on_batch is not None:
                    on_batch(sink.rows - first)
        sink.write_lines(out)
    except (UnicodeDecodeError, csv.Error) as e:
        raise SalesforceDataError(f"A Bulk results page of {object_name} is not valid CSV: {e}") from e
    return sink.rows - first, deleted


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
