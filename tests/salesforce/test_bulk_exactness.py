"""Bulk API 2.0 exports are exact, and byte for byte the CSV the REST path writes for the same data."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce import bulkrows
from plugin.salesforce.bulkrows import BLOCK, BulkLayout, copy_page, rest_datetime
from plugin.salesforce.csvout import CsvSink
from tests.fakeorg.genorg import generated_org
from tests.orgdata import expected_cell, load_objects
from tests.salesforce.exporting import BULK_ALL, DEMO, REST_ONLY, csv_digests, csv_rows, export


@pytest.fixture(scope="module")
def demo() -> Iterator[FakeOrgServer]:
    with start_fake_org(DEMO, page_size=250) as fake:
        fake.app.bulk.polls_to_complete = 1
        fake.app.bulk.page_size = 170  # several CSV pages per object
        yield fake


@pytest.fixture(scope="module")
def demo_runs(demo: FakeOrgServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("demo-runs")
    rest = export(demo, root / "rest", settings=REST_ONLY)
    bulk = export(demo, root / "bulk", settings=BULK_ALL)
    assert rest.result is not None and bulk.result is not None
    return {"rest": rest, "bulk": bulk}


def test_bulk_and_rest_write_identical_csv_bytes_for_the_demo_org(demo_runs: dict[str, Any]) -> None:
    rest, bulk = demo_runs["rest"], demo_runs["bulk"]
    assert csv_digests(bulk.result.directory) == csv_digests(rest.result.directory)
    methods = {n: e.get("method") for n, e in bulk.manifest["objects"].items() if e["status"] == "exported"}
    assert methods == {n: "bulk" for n in methods} and len(methods) == 7
    assert {e.get("method") for e in rest.manifest["objects"].values() if e["status"] == "exported"} == {"rest"}
    for name, entry in bulk.manifest["objects"].items():
        if entry["status"] == "exported":
            assert entry["sha256"] == rest.manifest["objects"][name]["sha256"], name
            assert entry["announced_records"] == entry["records"], name
            assert entry["announced_by"] == "numberRecordsProcessed"


def test_every_bulk_csv_value_is_exactly_the_org_record(demo_runs: dict[str, Any]) -> None:
    directory = demo_runs["bulk"].result.directory
    exported = {n for n, e in demo_runs["bulk"].manifest["objects"].items() if e["status"] == "exported"}
    objects = {n: o for n, o in load_objects(DEMO).items() if n in exported}
    assert len(objects) == 6  # every demo object but the file ones (no file options in this run)
    for name, obj in objects.items():
        rows = csv_rows(directory / "data" / f"{name}.csv")
        header, body = rows[0], rows[1:]
        types = {f["name"]: f["type"] for f in obj.fields}
        assert len(body) == len(obj.records), name
        by_id = {r[header.index("Id")]: dict(zip(header, r, strict=True)) for r in body}
        for record in obj.records:
            row = by_id[record["Id"]]
            for field in header:
                assert row[field] == expected_cell(record.get(field), types.get(field)), (name, record["Id"], field)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOrgServer]:
    generators = {
        "Account": {"count": 2600, "seed": 3},
        "Contact": {"count": 1900, "seed": 4},
        "Lead": {"count": 700, "seed": 5, "null_every": 2},
    }
    root = generated_org(tmp_path_factory.mktemp("gen") / "org", generators, objects=("Account", "Contact", "Lead"))
    with start_fake_org(root) as fake:
        fake.app.bulk.polls_to_complete = 1
        fake.app.bulk.page_size = 900
        yield fake


def test_bulk_and_rest_agree_byte_for_byte_on_generated_rows_and_the_count_decides(
    generated: FakeOrgServer, tmp_path: Path
) -> None:
    from plugin.config import ExportSettings

    rest = export(generated, tmp_path / "rest", settings=REST_ONLY)
    sized = export(generated, tmp_path / "sized", settings=ExportSettings(bulk_threshold=1000))
    assert csv_digests(sized.result.directory) == csv_digests(rest.result.directory)  # type: ignore[union-attr]
    entries = sized.manifest["objects"]
    # recordCount leaves the recycle bin out: 2600 - 52 and 1900 - 38 rows are above 1000, 700 - 14 below.
    assert {n: (entries[n]["method"], entries[n]["record_count"]) for n in ("Account", "Contact", "Lead")} == {
        "Account": ("bulk", 2548),
        "Contact": ("bulk", 1862),
        "Lead": ("rest", 686),
    }
    assert sized.manifest["sizing"] == {"record_counts": "limits/recordCount", "bulk_threshold": 1000}
    # queryAll: the recycle bin is in the CSV (one row in 50 by default), counted as deleted.
    assert entries["Account"]["records"] == 2600 and entries["Account"]["deleted_records"] == 52
    values = {v for r in csv_rows(sized.result.directory / "data" / "Account.csv")[1:] for v in r}  # type: ignore[union-attr]
    assert any("\r\n" in v for v in values) and any('"' in v for v in values) and any("日本語" in v for v in values)


# -- the conversion itself, on any text -----------------------------------------------------------
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
# Salesforce datetimes run from 1700 to 4000.
STAMP = st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(4000, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.000")
)
VALUE = st.one_of(st.none(), st.booleans(), TEXT, st.sampled_from(["", "-0", "1e5", "12345678901234567890.123456789"]))


def _bulk_cell(value: Any) -> str:
    """What a Bulk CSV page holds for a REST value (null and "" are both "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# The block pass has two roads: the C accelerator (_bulkscan.c, built at install) and the regular
# expressions it replaces (an install without a compiler); every copy test runs on both.
ROADS = ["c", "regex"]


def on_road(road: str) -> contextlib.AbstractContextManager[Any]:
    """Within it, ``copy_page`` takes that road for whole records."""
    assert road in ROADS
    return contextlib.nullcontext() if road == "c" else mock.patch.object(bulkrows, "_bulkscan", None)


def _copy(
    page: bytes,
    columns: list[str],
    types: dict[str, str],
    out: Path,
    *,
    piece: int = 1 << 20,
    block: int = BLOCK,
    road: str = "c",
) -> tuple[tuple[int, int], bytes]:
    """``copy_page`` of ``page`` arriving in pieces of ``piece`` bytes: (rows, deleted) and the CSV."""
    sink = CsvSink(out, columns)
    pieces = (page[i : i + piece] for i in range(0, len(page), piece))
    try:
        with on_road(road):
            got = copy_page(pieces, BulkLayout.of("X", columns, types), sink, block=block)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return got, out.read_bytes()


@pytest.mark.parametrize("road", ROADS)
@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(VALUE, VALUE, STAMP), max_size=8))
def test_a_bulk_page_converts_to_the_bytes_the_rest_path_writes(
    road: str, rows: list[tuple[Any, Any, str]], tmp_path_factory: Any
) -> None:
    tmp = tmp_path_factory.mktemp("conv")
    columns = ["Id", "A", "B", "Stamp"]
    records = [{"Id": f"001{i:012d}", "A": a, "B": b, "Stamp": f"{stamp}+0000"} for i, (a, b, stamp) in enumerate(rows)]
    rest = CsvSink(tmp / "rest.csv", columns)
    for record in records:
        rest.write(record)
    rest.close()
    page = io.StringIO()
    writer = csv.writer(page, quoting=csv.QUOTE_ALL, lineterminator="\r\n")  # as Salesforce writes Bulk pages
    writer.writerow(columns)
    for r in records:
        writer.writerow([r["Id"], _bulk_cell(r["A"]), _bulk_cell(r["B"]), r["Stamp"][:-5] + "Z"])
    types = {"Id": "id", "A": "string", "B": "textarea", "Stamp": "datetime"}
    got, data = _copy(page.getvalue().encode("utf-8"), columns, types, tmp / "bulk.csv", piece=7, block=64, road=road)
    assert got == (len(records), 0)
    assert data == (tmp / "rest.csv").read_bytes()


def test_only_bulk_utc_datetimes_are_rewritten() -> None:
    assert rest_datetime("2024-01-31T12:00:00.000Z") == "2024-01-31T12:00:00.000+0000"
    assert rest_datetime("2024-01-31") == "2024-01-31"
    assert rest_datetime("12:00:00.000Z") == "12:00:00.000Z"  # a time field keeps its Z
    # ASCII digits only, as the block copy's byte pattern: both roads give the same bytes
    assert rest_datetime("2024-01-31T\u0661\u0662:00:00.000Z") == "2024-01-31T\u0661\u0662:00:00.000Z"


def test_a_compressed_bulk_export_spools_pages_and_survives_a_drop(generated: FakeOrgServer, tmp_path: Path) -> None:
    import gzip

    generated.reset()
    rest = export(generated, tmp_path / "rest", settings=REST_ONLY, objects_filter=("Lead",))
    generated.add_fault({"action": "drop", "path": r"/jobs/query/.+/results", "nth": 1})
    bulk = export(generated, tmp_path / "bulk", settings=BULK_ALL, objects_filter=("Lead",), compression=True)
    generated.reset()
    entry = bulk.manifest["objects"]["Lead"]
    assert (entry["method"], entry["file"], entry["compression"]) == ("bulk", "data/Lead.csv.gz", "gzip")
    plain = (rest.result.directory / "data" / "Lead.csv").read_bytes()  # type: ignore[union-attr]
    assert gzip.decompress((bulk.result.directory / entry["file"]).read_bytes()) == plain  # type: ignore[union-attr]
    assert not list((bulk.result.directory / "data").glob(".*"))  # type: ignore[union-attr]  # no spool left


# -- the block copy gives what the csv module gives, on any text -----------------------------------
# Values rich in what makes CSV hard: quotes, commas, the "," separator itself, CR, LF, empties,
# and text that looks like a datetime (or its end) in columns that are not datetimes.
PIECES = ['"', ",", '","', '""', "\r", "\n", "\r\n", '\r\n"', "a", "Z", " ", "é", "T12:00:00.000Z", "1"]
HARD = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
CELL = st.one_of(HARD, TEXT, STAMP.map(lambda s: s + "Z"), st.sampled_from(["", "true", "false", "001A"]))
KINDS = ["id", "string", "datetime", "boolean", "reference", "double", "date", "time", "anyType"]


def _reference(page: str, columns: list[str], stamps: list[int], deleted_column: int | None) -> tuple[str, int]:
    """Every row through csv.reader and csv.writer: what the copy must give."""
    reader = csv.reader(io.StringIO(page, newline=""), strict=True)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(next(reader))
    deleted = 0
    for row in reader:
        assert len(row) == len(columns)
        for i in stamps:
            row[i] = rest_datetime(row[i])
        deleted += deleted_column is not None and row[deleted_column] == "true"
        writer.writerow(row)
    return out.getvalue(), deleted


ALNUM = st.from_regex(r"[0-9A-Za-z]{1,18}", fullmatch=True)
# mostly what the Bulk API writes for each type, sometimes anything at all
TYPED = {
    "id": ALNUM,
    "reference": st.one_of(ALNUM, st.just("")),
    "datetime": st.one_of(STAMP.map(lambda s: s + "Z"), st.just("")),
    "boolean": st.sampled_from(["true", "false"]),
    "double": st.sampled_from(["", "-0", "1e5", "12345678901234567890.123456789", "1.5E-7"]),
    "date": st.sampled_from(["", "2024-01-31", "1700-01-01"]),
}


def _cell(kind: str, hostile: bool) -> st.SearchStrategy[str]:
    typed = TYPED.get(kind, st.one_of(TEXT, HARD))
    return st.one_of(*[typed] * 7, CELL) if hostile else typed


@pytest.mark.parametrize("road", ROADS)
@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4).map(lambda k: ["id", *k[1:]]),
    data=st.data(),
    hostile=st.booleans(),
    quote_all=st.booleans(),
    line_end=st.sampled_from(["\r\n", "\r\n", "\n"]),  # CRLF as asked, LF from a server that did not listen
    piece=st.integers(1, 64),
    block=st.integers(1, 200),
)
def test_the_block_copy_writes_what_the_csv_module_writes(
    road: str,
    kinds: list[str],
    data: st.DataObject,
    hostile: bool,
    quote_all: bool,
    line_end: str,
    piece: int,
    block: int,
    tmp_path_factory: Any,
) -> None:
    width = len(kinds)
    stamps = [i for i, kind in enumerate(kinds) if kind == "datetime"]
    deleted_column = kinds.index("boolean") if "boolean" in kinds else None
    columns = ["IsDeleted" if i == deleted_column else f"C{i}" for i in range(width)]
    rows = [list(r) for r in data.draw(st.lists(st.tuples(*[_cell(k, hostile) for k in kinds]), max_size=10))]
    page = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL  # Salesforce quotes all; the other form must work too
    writer = csv.writer(page, quoting=quoting, lineterminator=line_end)
    writer.writerow(columns)
    writer.writerows(rows)
    # the csv module does not quote a lone CR when rows end in LF: such a page does not read back
    assume(list(csv.reader(io.StringIO(page.getvalue(), newline="")))[1:] == rows)
    expected, expected_deleted = _reference(page.getvalue(), columns, stamps, deleted_column)
    types = dict(zip(columns, kinds, strict=True))
    tmp = tmp_path_factory.mktemp("road")
    data = page.getvalue().encode("utf-8")
    got, out = _copy(data, columns, types, tmp / "out.csv", piece=piece, block=block, road=road)
    assert got == (len(rows), expected_deleted)
    assert out == expected.encode("utf-8")


@pytest.mark.parametrize("road", ROADS)
def test_whole_records_are_copied_as_they_come_and_odd_ones_through_the_csv_module(
    road: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns, types = ["Id", "A", "Stamp"], {"Id": "id", "A": "string", "Stamp": "datetime"}
    fast = (
        '"Id","A","Stamp"\r\n'
        '"1","plain","2024-01-31T12:00:00.000Z"\r\n'
        '"2","a,b","2024-01-31T12:00:00.000Z"\r\n'
        '"3","say ""hi""",""\r\n'
        '"4","two\r\nlines",""\r\n'
        '"5","",""\r\n'
    )
    expected = (
        b'"Id","A","Stamp"\r\n"1","plain","2024-01-31T12:00:00.000+0000"\r\n'
        b'"2","a,b","2024-01-31T12:00:00.000+0000"\r\n"3","say ""hi""",""\r\n"4","two\r\nlines",""\r\n'
        b'"5","",""\r\n'
    )
    with monkeypatch.context() as patched:  # quotes, commas and line breaks inside values: no csv module needed
        patched.setattr(bulkrows, "_csv_module_rows", None)
        assert _copy(fast.encode(), columns, types, tmp_path / "fast.csv", road=road) == ((5, 0), expected)
    # a text value that ends like a datetime is no datetime: that block takes the csv module's road
    odd = fast.replace('"plain"', '"at T12:00:00.000Z"')
    got, data = _copy(odd.encode(), columns, types, tmp_path / "odd.csv", road=road)
    assert got == (5, 0) and data == expected.replace(b'"plain"', b'"at T12:00:00.000Z"')
    # a page in another form (LF line ends, values unquoted) gives the same CSV
    lf = fast.replace("\r\n", "\n").replace('"1","plain"', "1,plain")
    got, data = _copy(lf.encode(), columns, types, tmp_path / "lf.csv", road=road)
    assert got == (5, 0) and data == expected.replace(b"two\r\nlines", b"two\nlines")


@pytest.mark.parametrize("road", ROADS)
def test_a_row_of_the_wrong_width_is_refused_on_either_road(road: str, tmp_path: Path) -> None:
    from plugin.salesforce.errors import SalesforceDataError

    for line in ('"1","x","y"\r\n', '"1"\r\n', "1,x,y\r\n", '"1","x,",""\r\n', '"1","x","y"\n'):
        with pytest.raises(SalesforceDataError, match=r"has [13] values for 2 columns"):
            page = ('"Id","A"\r\n' + line).encode()
            _copy(page, ["Id", "A"], {"Id": "id", "A": "string"}, tmp_path / "o.csv", road=road)


@pytest.mark.parametrize("road", ROADS)
def test_a_page_that_is_not_utf8_is_refused_on_either_road(road: str, tmp_path: Path) -> None:
    from plugin.salesforce.errors import SalesforceDataError

    for end in (b"\r\n", b"\n"):
        page = b'"Id","A"' + end + b'"1","caf\xe9"' + end
        with pytest.raises(SalesforceDataError, match="UTF-8"):
            _copy(page, ["Id", "A"], {"Id": "id", "A": "string"}, tmp_path / "o.csv", road=road)


def test_a_record_longer_than_a_block_waits_for_its_end(tmp_path: Path) -> None:
    long = "x" * 5000
    page = f'"Id","A"\r\n"1","{long}"\r\n"2","b"\r\n'.encode()
    got, data = _copy(page, ["Id", "A"], {"Id": "id", "A": "string"}, tmp_path / "o.csv", piece=100, block=1000)
    assert got == (2, 0) and data == page


@pytest.mark.parametrize(
    "body",
    [
        '"1","two\nlines","x"\r\n"2","b","c"\r\n',
        '"1","a,\r\nb","x"\r\n"2","b","c"\r\n',
        '"1","lone\rcr","x"\r\n',
        '"1","three\r\n\r\nlines",""\r\n"2","",""\r\n',
        '"1","spans\r\n""2"",""quotes""","x"\r\n"2","b","c"\r\n',  # a record start lookalike inside a value
        '"1","open\r\n""line","x"\r\n"2","b","""q"""\r\n',
    ],
)
@pytest.mark.parametrize("road", ROADS)
def test_records_over_several_lines_copy_as_the_csv_module_reads_them(road: str, body: str, tmp_path: Path) -> None:
    columns = ["Id", "A", "B"]
    page = '"Id","A","B"\r\n' + body
    expected, _ = _reference(page, columns, [], None)
    types = {"Id": "id", "A": "string", "B": "string"}
    for block in (1, 20, BLOCK):
        got, data = _copy(page.encode(), columns, types, tmp_path / "out.csv", piece=3, block=block, road=road)
        assert got[0] == len(list(csv.reader(io.StringIO(page, newline="")))) - 1
        assert data == expected.encode("utf-8")


@pytest.mark.parametrize("road", ROADS)
def test_utf8_is_checked_across_the_pieces_of_a_big_block(road: str, tmp_path: Path) -> None:
    from plugin.salesforce.errors import SalesforceDataError

    rows = [f'"{i}","caf\u00e9 \U0001f680 {"x" * (i % 50)}"\r\n' for i in range(60_000)]
    page = ('"Id","A"\r\n' + "".join(rows)).encode("utf-8")
    assert len(page) > 2 * bulkrows._UTF8_PIECE  # several pieces in one block
    got, data = _copy(page, ["Id", "A"], {"Id": "id", "A": "string"}, tmp_path / "ok.csv", road=road)
    assert got == (60_000, 0) and data == page
    cut = page.index(b"\xf0\x9f\x9a\x80", 3 * bulkrows._UTF8_PIECE // 2)  # past the first piece
    broken = page[:cut] + b"\xf0\x9fA\x9a\x80" + page[cut + 4 :]
    with pytest.raises(SalesforceDataError, match="UTF-8"):
        _copy(broken, ["Id", "A"], {"Id": "id", "A": "string"}, tmp_path / "bad.csv", road=road)
