"""Bulk API 2.0 results pages into the object's CSV, copied as they come and checked block by block.

Our CSV is the form Salesforce's Bulk API writes when asked for CRLF line ends: every value in
quotes (as Data Loader writes its exports), quotes inside values doubled, CRLF after each record.
So a page is already our CSV but for one thing: its datetimes (``2024-01-31T12:00:00.000Z``) take
the REST API's form (``2024-01-31T12:00:00.000+0000``, the same instant), which is what the REST
path writes and what the org's records say.

Pages are copied block by block (about a megabyte, cut where a record starts) without splitting them into
cells in Python, which would cost ten times what reading the bytes does. One regular expression,
built per object from its column types, must match each block as a run of whole records: that
counts the records and the deleted ones, and proves that every value ending like a Bulk datetime
(``T12:00:00.000Z``) is in a datetime column (text columns may not end so; the cells of ids,
booleans, numbers and dates may hold no colon), so the one substitution of those endings
rewrites datetimes and nothing else.
The same pass runs in C when the optional extension ``_bulkscan`` was built at install
(_bulkscan.c: one pass over the bytes for the grammar, the UTF-8 check and the rewrite, several
times faster than the regular expressions: bench/README.md); tests/salesforce/test_bulkscan.py proves both roads
give the same on any bytes.
A block the expression does not match (another form, a text value ending like a datetime, a
server that ignored the line-end request) goes through ``csv.reader``/``csv.writer`` instead,
which gives the same bytes for a page that is well formed and a clear error for one that is not.
tests/salesforce/test_bulk_exactness.py compares both roads with the csv module on any text.

Where records start: a block is cut after a CRLF followed by a quote and a letter or digit. Inside
a quoted value a quote is either doubled or the closing one (then a comma or a line end follows),
so that sequence is a new record whose first value, the Id, begins there.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import SalesforceDataError

try:  # the same pass in C (_bulkscan.c), built at install when a compiler is there
    from plugin.salesforce import _bulkscan
except ImportError:  # pragma: no cover - an install without a compiler: the regular expressions do it
    _bulkscan = None  # type: ignore[assignment]

BLOCK = 1 << 20  # bytes converted at once: per-block costs vanish, and the block is still cached when written

_STAMP_END = rb"T\d\d:\d\d:\d\d\.\d{3}Z"  # how a Bulk datetime ends (2024-01-31T12:00:00.000Z)
# datetime cells: any value without quotes (one ending like that is rewritten, as rest_datetime
# does); ids, booleans, numbers and dates hold no colon, so they cannot end like a datetime; any
# other column holds any quoted text but one ending like a datetime
_PLAIN = rb'"[^"]*+"'
_NO_COLON = rb'"[^":]*+"'
_COLONLESS = frozenset({"id", "reference", "boolean", "date", "int", "long", "double", "currency", "percent"})
_TEXT = rb'"[^"]*+(?:""[^"]*+)*+(?<!' + _STAMP_END + rb')"'
# The cell of each column kind, by its code for _bulkscan.scan (I the Id, D datetime, C colonless, T text)
_CELLS = {ord("I"): rb'"[0-9A-Za-z]++"', ord("D"): _PLAIN, ord("C"): _NO_COLON, ord("T"): _TEXT}
_DATETIME_END = re.compile(rb'Z"(?<=' + _STAMP_END + rb'")(?=[,\r])')
_UTF8_PIECE = 1 << 20
_REST_DATETIME = re.compile(_STAMP_END.decode() + r"\Z", re.ASCII)  # the same rule on the csv module's road


def rest_datetime(value: str) -> str:
    """A Bulk datetime (``...T12:00:00.000Z``) in the REST form (``...T12:00:00.000+0000``)."""
    return value[:-1] + "+0000" if _REST_DATETIME.search(value) else value


@dataclass(frozen=True)
class BulkLayout:
    """What one object's results pages look like: columns, which are datetimes, where IsDeleted is."""

    object_name: str
    columns: tuple[str, ...]
    datetime_columns: tuple[int, ...]
    deleted_column: int | None
    header: bytes  # the header line as the Bulk API writes it (and our CSV starts)
    records: re.Pattern[bytes] | None  # a whole record, or one stray byte; None: the csv module's road
    kinds: bytes  # the same grammar for _bulkscan.scan: one of I D C T per column (see _bulkscan.c)

    @classmethod
    def of(cls, object_name: str, columns: Sequence[str], types: Mapping[str, Any]) -> BulkLayout:
        """The layout of ``columns``, ``types`` mapping field names to describe types."""
        kinds = [str(types.get(c) or "") for c in columns]
        deleted = columns.index("IsDeleted") if "IsDeleted" in columns else None
        header = (",".join(f'"{c}"' for c in columns) + "\r\n").encode("utf-8")
        records, codes = None, b""
        if columns and kinds[0] == "id":  # records start with an Id: blocks can be cut (see above)
            codes = b"I" + b"".join(b"D" if k == "datetime" else b"C" if k in _COLONLESS else b"T" for k in kinds[1:])
            cells = [_CELLS[code] for code in codes]
            counted = 0 if deleted is None else deleted  # its cell is captured: one value per record
            cells[counted] = b"(" + cells[counted] + b")"
            records = re.compile(b",".join(cells) + rb"\r\n|[\s\S]")
        stamps = tuple(i for i, kind in enumerate(kinds) if kind == "datetime")
        return cls(object_name, tuple(columns), stamps, deleted, header, records, codes)


def copy_page(
    chunks: Iterable[bytes],
    layout: BulkLayout,
    sink: CsvSink,
    *,
    on_batch: Callable[[int], None] | None = None,
    block: int = BLOCK,
) -> tuple[int, int]:
    """Append one results page (its body's bytes, in any pieces) to ``sink``; returns its rows and
    those with IsDeleted true. ``on_batch`` hears the rows so far after each block.

    Raises:
        SalesforceDataError: the header is not the columns asked for, a row has the wrong width,
            or the page is not UTF-8 CSV.
    """
    pieces = iter(chunks)
    buffer = b""
    for chunk in pieces:
        buffer += chunk
        if b"\n" in buffer:
            break
    end = buffer.find(b"\n") + 1
    if not buffer:
        return 0, 0
    if end == 0 or buffer[:end] != layout.header or layout.records is None:
        return _csv_module_page(itertools.chain([buffer], pieces), layout, sink)
    first = sink.rows
    deleted = 0
    pending = [buffer[end:]]
    size = len(pending[0])
    due, searched = block, 0  # join again once another block came; look for a start in what is new
    for chunk in pieces:
        pending.append(chunk)
        size += len(chunk)
        if size >= due:
            buffer = b"".join(pending)
            cut = _last_record_start(buffer, since=searched)
            if cut:
                deleted += _copy_block(memoryview(buffer)[:cut], layout, sink)
                buffer = buffer[cut:]
                if on_batch is not None:
                    on_batch(sink.rows - first)
            # a record longer than a block (or a page with no place to cut) waits for more, without
            # joining and searching everything again at every chunk
            pending, size = [buffer], len(buffer)
            due, searched = size + block, max(0, size - 3)
    if size:
        deleted += _copy_block(b"".join(pending), layout, sink)
    return sink.rows - first, deleted


def _last_record_start(buffer: bytes, *, since: int = 0) -> int:
    """Offset of the last record start in ``buffer`` (at or after ``since``) with a whole record
    before it, or 0."""
    at = len(buffer)
    while True:
        at = buffer.rfind(b'\r\n"', since, at)
        if at <= 0:
            return 0
        if buffer[at + 3 : at + 4].isalnum():  # (a quote that ends the buffer is no answer yet)
            return at + 2


def _copy_block(block: bytes | memoryview, layout: BulkLayout, sink: CsvSink) -> int:
    """Whole records into the sink; returns how many have IsDeleted true."""
    try:
        done = block_pass(block, layout)
    except UnicodeDecodeError as e:
        raise _unreadable(layout, e) from e
    if done is None:  # not records of the expected form
        return _csv_module_block(bytes(block), layout, sink)
    data, rows, deleted = done
    sink.write_raw(data, rows)
    return deleted


def block_pass(block: bytes | memoryview, layout: BulkLayout) -> tuple[bytes, int, int] | None:
    """``block`` checked as whole records of the layout's grammar and its datetimes rewritten:
    (bytes for the CSV, records, deleted records), or None when it is not such records. One pass
    in C when the accelerator is built, else the regular expressions; both give the same.

    Raises:
        UnicodeDecodeError: records of that form, but not UTF-8.
    """
    if _bulkscan is not None:
        counted = -1 if layout.deleted_column is None else layout.deleted_column
        return _bulkscan.scan(block, layout.kinds, counted)
    return regex_pass(block, layout)


def regex_pass(block: bytes | memoryview, layout: BulkLayout) -> tuple[bytes, int, int] | None:
    """``block_pass`` by the regular expressions (the road without the accelerator)."""
    assert layout.records is not None
    data = bytes(block)
    found = layout.records.findall(data)
    if b"" in found or not data.endswith(b"\r\n"):  # a stray byte: not records of the expected form
        return None
    # the whole block: its non-ASCII bytes alone could pass with ASCII cutting a sequence (b"\xc3A\xa9")
    _check_utf8(data)
    if layout.datetime_columns:
        data = _DATETIME_END.sub(b'+0000"', data)
    return data, len(found), found.count(b'"true"') if layout.deleted_column is not None else 0


def _check_utf8(block: bytes) -> None:
    """Decode ``block`` about a megabyte at a time and drop the text (a whole block's text would
    take up to four times its size); the decoder's ASCII fast path makes this cheap. Pieces end at
    a quote: an ASCII byte is never inside a multi-byte sequence, so no sequence is cut.

    Raises:
        UnicodeDecodeError: the bytes are not UTF-8.
    """
    start = 0
    while start < len(block):
        end = block.find(b'"', start + _UTF8_PIECE)
        end = len(block) if end < 0 else end
        block[start:end].decode("utf-8")
        start = end


def _csv_module_block(block: bytes, layout: BulkLayout, sink: CsvSink) -> int:
    _, deleted = _csv_module_rows(_text_lines([block]), layout, sink)
    return deleted


def _csv_module_page(chunks: Iterable[bytes], layout: BulkLayout, sink: CsvSink) -> tuple[int, int]:
    lines = _text_lines(chunks)
    try:
        header = next(csv.reader(lines, strict=True), None)
    except (UnicodeDecodeError, csv.Error) as e:
        raise _unreadable(layout, e) from e
    if header is None:
        return 0, 0
    if header != list(layout.columns):
        raise SalesforceDataError(
            f"A Bulk results page of {layout.object_name} has the columns {header[:5]}..., not the ones asked for.",
            object_name=layout.object_name,
        )
    return _csv_module_rows(lines, layout, sink)


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    raw = io.BufferedReader(_Chunks(iter(chunks)))
    return iter(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def _csv_module_rows(lines: Iterator[str], layout: BulkLayout, sink: CsvSink) -> tuple[int, int]:
    """Every record read and written by the csv module (any CSV form the module reads)."""
    width, stamps, deleted_column = len(layout.columns), layout.datetime_columns, layout.deleted_column
    first, deleted = sink.rows, 0
    batch: list[list[str]] = []
    try:
        for row in csv.reader(lines, strict=True):
            if len(row) != width:
                raise SalesforceDataError(
                    f"A Bulk results row of {layout.object_name} has {len(row)} values for {width} columns.",
                    object_name=layout.object_name,
                )
            for i in stamps:
                row[i] = rest_datetime(row[i])
            if deleted_column is not None and row[deleted_column] == "true":
                deleted += 1
            batch.append(row)
            if len(batch) >= 1000:
                sink.write_cells(batch)
                batch = []
        sink.write_cells(batch)
    except (UnicodeDecodeError, csv.Error) as e:
        raise _unreadable(layout, e) from e
    return sink.rows - first, deleted


def _unreadable(layout: BulkLayout, error: UnicodeDecodeError | csv.Error) -> SalesforceDataError:
    what = f"valid UTF-8: {error.reason}" if isinstance(error, UnicodeDecodeError) else f"valid CSV: {error}"
    return SalesforceDataError(
        f"A Bulk results page of {layout.object_name} is not {what}.", object_name=layout.object_name
    )


class _Chunks(io.RawIOBase):
    """Byte chunks as a raw stream (for a text reader over them)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
