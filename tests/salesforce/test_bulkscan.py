"""The C block pass (_bulkscan.c) is built, is used, and does what the regular expressions do on any
bytes: the same data, counts, refusals and UTF-8 errors (tests/salesforce/test_bulk_exactness.py
compares both roads with the csv module on whole pages)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plugin.salesforce import bulkrows
from plugin.salesforce.bulkrows import BulkLayout, block_pass, regex_pass
from plugin.salesforce.csvout import CsvSink

KINDS = ["string", "datetime", "boolean", "reference", "double", "date", "time", "textarea"]
# bytes that matter to the grammar, the datetime ending and UTF-8, and whole pieces of them
ATOMS = [
    b'"',
    b",",
    b'","',
    b'""',
    b"\r",
    b"\n",
    b"\r\n",
    b'\r\n"',
    b":",
    b"T",
    b"Z",
    b".",
    b"7",
    b"a",
    b"true",
    b"T12:00:00.000Z",
    b"2024-01-31T12:00:00.000Z",
    b"T12:00:00.000",  # an ending cut short, to be ended by any atom
    b"T12:00:00.00",
    "é".encode(),
    "日".encode(),
    "\U0001f680".encode(),
    b"\xc3",  # a lead byte alone
    b"\xa9",  # a continuation byte alone
    b"\xe0\x80\x80",  # overlong
    b"\xed\xa0\x80",  # a surrogate
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf0\x9f\x9a",  # cut short
    b"\xff",
    b"\xc0\xaf",
]
STAMP = st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", fullmatch=True)
CELL = st.one_of(
    st.lists(st.sampled_from(ATOMS), max_size=6).map(b"".join),  # not always UTF-8
    st.text(max_size=12).map(str.encode),
    STAMP.map(str.encode),
    st.sampled_from([b"", b"true", b"false", b"001A000000abcdEFG", b"12:00:00.000Z"]),
)
# what fits each kind (so that a block is often records, UTF-8 or not)
_BAD_UTF8 = [a for a in ATOMS if a[:1] >= b"\x80"]
_TEXT = st.lists(st.sampled_from([a for a in ATOMS if b"Z" not in a]), max_size=6).map(b"".join)
FITTING = {
    "datetime": st.one_of(STAMP.map(str.encode), st.just(b""), st.sampled_from(_BAD_UTF8)),
    "boolean": st.sampled_from([b"true", b"false", *_BAD_UTF8]),
    "reference": st.sampled_from([b"", b"001A000000abcdEFG"]),
    "double": st.sampled_from([b"", b"-0", b"1e5", b"12345678901234567890.123456789"]),
    "date": st.sampled_from([b"", b"2024-01-31"]),
}


def _layout(kinds: list[str]) -> BulkLayout:
    deleted = kinds.index("boolean") if "boolean" in kinds else None
    columns = ["IsDeleted" if i == deleted else f"C{i}" for i in range(len(kinds))]
    return BulkLayout.of("X", columns, dict(zip(columns, kinds, strict=True)))


def _outcome(road: Any, block: bytes | memoryview, layout: BulkLayout) -> Any:
    try:
        return road(block, layout)
    except UnicodeDecodeError as e:
        return ("UnicodeDecodeError", e.reason)


@st.composite
def blocks(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """Records as the Bulk API writes them, then sometimes broken at a few places by hostile bytes."""
    kinds = ["id", *draw(st.lists(st.sampled_from(KINDS), max_size=4))]
    ids = st.from_regex(r"[0-9A-Za-z]{1,18}", fullmatch=True)
    cells = [CELL if draw(st.integers(0, 9)) == 0 else FITTING.get(k, _TEXT) for k in kinds[1:]]
    rows = draw(st.lists(st.tuples(ids.map(str.encode), *cells), min_size=1, max_size=6))
    # as the Bulk API writes them: every value quoted, quotes doubled, CRLF after each record
    data = b"".join(b",".join(b'"' + v.replace(b'"', b'""') + b'"' for v in row) + b"\r\n" for row in rows)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 3))
        data = data[:at] + draw(st.sampled_from([*ATOMS, b""])) + data[at + cut :]
    return kinds, data


def test_the_accelerator_is_built_and_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert bulkrows._bulkscan is not None, "the C extension was not built: pip install -e . with a compiler"
    calls = []

    def scan(block: Any, kinds: bytes, counted: int) -> Any:
        calls.append((bytes(block), kinds, counted))
        assert bulkrows._bulkscan is not None
        return real(block, kinds, counted)

    real = bulkrows._bulkscan.scan
    monkeypatch.setattr(bulkrows, "_bulkscan", SimpleNamespace(scan=scan))
    columns = ["Id", "IsDeleted", "When", "Note"]
    types = {"Id": "id", "IsDeleted": "boolean", "When": "datetime", "Note": "string"}
    page = b'"Id","IsDeleted","When","Note"\r\n"1","true","2024-01-31T12:00:00.000Z","a"\r\n"2","false","","b"\r\n'
    sink = CsvSink(tmp_path / "o.csv", columns)
    assert bulkrows.copy_page([page], BulkLayout.of("X", columns, types), sink) == (2, 1)
    sink.close()
    assert calls == [(page[page.index(b"\n") + 1 :], b"ICDT", 1)]
    assert (tmp_path / "o.csv").read_bytes() == page.replace(b"000Z", b"000+0000")


@settings(max_examples=1000, deadline=None)
@given(case=blocks(), as_view=st.booleans())
@example(case=(["id", "string"], b'"1","\xc3A\xa9"\r\n'), as_view=False)
@example(case=(["id", "string"], b'"1","at T12:00:00.000Z"\r\n'), as_view=False)
@example(case=(["id", "datetime"], b'"1","2024-01-31T12:00:00.000Z"\r\n'), as_view=True)
@example(case=(["id", "boolean"], b'"1","a:b"\r\n'), as_view=False)
@example(case=(["id", "boolean"], b'"1","truefalse"\r\n"2","true"\r\n'), as_view=False)
@example(case=(["id", "string"], b'"","x"\r\n'), as_view=False)  # an empty Id
@example(case=(["id", "string"], b'"1","T12:00:00.000Z"\r\n'), as_view=False)  # the ending alone
@example(case=(["id", "datetime"], b'"1","T12:00:00.000Z"\r\n'), as_view=False)
@example(case=(["id", "datetime"], b'"1","T12:00:00.000z"\r\n"2","T12:00:00.00.Z"\r\n'), as_view=False)
@example(case=(["id", "string", "datetime"], b'"1","a 12:00:00.000Z","2024-01-31 12:00:00.000Z"\r\n'), as_view=False)
@example(case=(["id", "string"], b'"1","\xe6\x97\xc3\xa9"\r\n'), as_view=False)  # a lead byte as continuation
@example(case=(["id", "string"], b'"1","\xf0\x9f\x9a\xc3\xa9"\r\n'), as_view=False)
@example(case=(["id", "string"], b""), as_view=False)
@example(case=(["id", "string"], b'"1","x"'), as_view=False)
@example(case=(["id", "string"], b'"1","x""'), as_view=False)
def test_the_c_pass_gives_what_the_regular_expressions_give(case: tuple[list[str], bytes], as_view: bool) -> None:
    kinds, data = case
    layout = _layout(kinds)
    block: bytes | memoryview = memoryview(b"#" + data)[1:] if as_view else data
    assert bulkrows._bulkscan is not None
    assert _outcome(block_pass, block, layout) == _outcome(regex_pass, data, layout)


@pytest.mark.slow
@settings(max_examples=30_000, deadline=None)
@given(case=blocks(), as_view=st.booleans())
def test_the_c_pass_gives_what_the_regular_expressions_give_on_many_more_blocks(
    case: tuple[list[str], bytes], as_view: bool
) -> None:
    test_the_c_pass_gives_what_the_regular_expressions_give.hypothesis.inner_test(case, as_view)  # type: ignore[attr-defined]


def test_a_broken_kind_list_is_refused_with_what_is_wrong() -> None:
    assert bulkrows._bulkscan is not None
    with pytest.raises(ValueError, match="at least one column"):
        bulkrows._bulkscan.scan(b'"1"\r\n', b"", -1)
    with pytest.raises(ValueError, match="unknown column kind x"):
        bulkrows._bulkscan.scan(b'"1"\r\n', b"Ix", -1)
