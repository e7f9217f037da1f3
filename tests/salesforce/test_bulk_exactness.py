"""Bulk API 2.0 exports are exact, and byte for byte the CSV the REST path writes for the same data."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.bulkrows import convert_page, convert_rows, rest_datetime
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


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(VALUE, VALUE, STAMP), max_size=8))
def test_a_bulk_page_converts_to_the_bytes_the_rest_path_writes(
    rows: list[tuple[Any, Any, str]], tmp_path_factory: Any
) -> None:
    tmp = tmp_path_factory.mktemp("conv")
    columns = ["Id", "A", "B", "Stamp"]
    records = [{"Id": f"001{i:012d}", "A": a, "B": b, "Stamp": f"{stamp}+0000"} for i, (a, b, stamp) in enumerate(rows)]
    rest = CsvSink(tmp / "rest.csv", columns)
    for record in records:
        rest.write(record)
    rest.close()
    page = io.StringIO()
    writer = csv.writer(page, quoting=csv.QUOTE_ALL, lineterminator="\n")  # as Salesforce writes Bulk pages
    writer.writerow(columns)
    for r in records:
        writer.writerow([r["Id"], _bulk_cell(r["A"]), _bulk_cell(r["B"]), r["Stamp"][:-5] + "Z"])
    (tmp / "page.csv").write_bytes(page.getvalue().encode("utf-8"))
    bulk = CsvSink(tmp / "bulk.csv", columns)
    assert convert_page(tmp / "page.csv", columns, [3], bulk, object_name="X") == (len(records), 0)
    bulk.close()
    assert (tmp / "bulk.csv").read_bytes() == (tmp / "rest.csv").read_bytes()


def test_only_bulk_utc_datetimes_are_rewritten() -> None:
    assert rest_datetime("2024-01-31T12:00:00.000Z") == "2024-01-31T12:00:00.000+0000"
    assert rest_datetime("2024-01-31") == "2024-01-31"
    assert rest_datetime("12:00:00.000Z") == "12:00:00.000Z"  # a time field keeps its Z


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


# -- the short road for plain lines gives what the csv module gives ---------------------------------
# Values rich in what makes CSV hard: quotes, commas, the "," separator itself, CR, LF, empties.
PIECES = ['"', ",", '","', '""', "\r", "\n", "\r\n", "a", "Z", " ", "é"]
HARD = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
CELL = st.one_of(HARD, TEXT, STAMP.map(lambda s: s + "Z"), st.sampled_from(["", "true", "false"]))


def _reference(page: str, columns: list[str], stamps: list[int], deleted_column: int | None) -> tuple[str, int]:
    """Every row through csv.reader and csv.writer: what the conversion must give."""
    reader = csv.reader(io.StringIO(page, newline=""), strict=True)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(next(reader))
    deleted = 0
    for row in reader:
        assert len(row) == len(columns)
        for i in stamps:
            row[i] = rest_datetime(row[i])
        deleted += deleted_column is not None and row[deleted_column] == "true"
        writer.writerow(row)
    return out.getvalue(), deleted


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 4),
    cells=st.lists(CELL, max_size=40),
    quote_all=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_the_short_road_writes_what_the_csv_module_writes(
    width: int, cells: list[str], quote_all: bool, line_end: str, tmp_path_factory: Any
) -> None:
    columns = [f"C{i}" for i in range(width)]
    rows = [cells[i : i + width] for i in range(0, len(cells) - len(cells) % width, width)]
    page = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL  # Salesforce quotes all; the other form must work too
    writer = csv.writer(page, quoting=quoting, lineterminator=line_end)
    writer.writerow(columns)
    writer.writerows(rows)
    # the csv module does not quote a lone CR when rows end in LF: such a page does not read back
    assume(list(csv.reader(io.StringIO(page.getvalue(), newline="")))[1:] == rows)
    stamps, deleted_column = [width - 1], 0
    expected, expected_deleted = _reference(page.getvalue(), columns, stamps, deleted_column)
    tmp = tmp_path_factory.mktemp("road")
    (tmp / "page.csv").write_bytes(page.getvalue().encode("utf-8"))
    sink = CsvSink(tmp / "out.csv", columns)
    got = convert_page(tmp / "page.csv", columns, stamps, sink, object_name="X", deleted_column=deleted_column)
    sink.close()
    assert got == (len(rows), expected_deleted)
    assert (tmp / "out.csv").read_bytes() == expected.encode("utf-8")


def test_plain_lines_take_the_short_road_and_hard_ones_the_csv_module(tmp_path: Path) -> None:
    page = (
        '"Id","A","Stamp"\n'
        '"1","plain","2024-01-31T12:00:00.000Z"\n'
        '"2","a,b","2024-01-31T12:00:00.000Z"\n'  # a comma: quoted again on the way out
        '"3","say ""hi""",""\n'  # quotes: the csv module's road
        '"4","two\nlines",""\n'  # one record over two lines
        '"5","",""\n'
    )
    sink = CsvSink(tmp_path / "out.csv", ["Id", "A", "Stamp"])
    assert convert_rows(io.StringIO(page, newline=""), ["Id", "A", "Stamp"], [2], sink, object_name="X") == (5, 0)
    sink.close()
    assert (tmp_path / "out.csv").read_bytes() == (
        b"Id,A,Stamp\r\n1,plain,2024-01-31T12:00:00.000+0000\r\n"
        b'2,"a,b",2024-01-31T12:00:00.000+0000\r\n3,"say ""hi""",\r\n4,"two\nlines",\r\n5,,\r\n'
    )


def test_a_row_of_the_wrong_width_is_refused_on_either_road(tmp_path: Path) -> None:
    from plugin.salesforce.errors import SalesforceDataError

    for line in ('"1","x","y"\n', '"1"\n', "1,x,y\n", '"1","x,",""\n'):
        sink = CsvSink(tmp_path / "out.csv", ["Id", "A"])
        with pytest.raises(SalesforceDataError, match=r"has [13] values for 2 columns"):
            convert_rows(io.StringIO('"Id","A"\n' + line, newline=""), ["Id", "A"], [], sink, object_name="X")
        sink.abort()


@pytest.mark.parametrize(
    "body",
    [
        '"1","two\nlines","x"\n"2","b","c"\n',  # gathered: a line break, no quote
        '"1","a,\r\nb","x"\n"2","b","c"\n',  # CRLF and a comma inside a value
        '"1","lone\rcr","x"\n',  # a lone CR also ends a physical line when read with newline=""
        '"1","three\n\nlines",""\n"2","",""\n',  # an empty line inside a value
        '"1","spans\nand ""quotes""","x"\n"2","b","c"\n',  # gathered, but quotes inside: the csv module
        '"1","open\nline","x"\n"2","b","""q"""\n',  # gathering runs into the next record: given back
    ],
)
def test_records_over_several_lines_convert_as_the_csv_module_reads_them(body: str, tmp_path: Path) -> None:
    columns = ["Id", "A", "B"]
    page = '"Id","A","B"\n' + body
    expected, _ = _reference(page, columns, [], None)
    sink = CsvSink(tmp_path / "out.csv", columns)
    rows, _ = convert_rows(io.StringIO(page, newline=""), columns, [], sink, object_name="X")
    sink.close()
    assert rows == len(list(csv.reader(io.StringIO(page, newline="")))) - 1
    assert (tmp_path / "out.csv").read_bytes() == expected.encode("utf-8")
