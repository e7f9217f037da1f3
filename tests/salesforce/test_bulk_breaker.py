"""Attempts to break the Bulk page copy (bulkrows.py): each case is a page the csv module reads
one way and the block copy must read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.salesforce.errors import SalesforceDataError
from tests.salesforce.test_bulk_exactness import ROADS, _copy

COLUMNS, TYPES = ["Id", "A", "B"], {"Id": "id", "A": "string", "B": "string"}


@pytest.mark.parametrize(
    "body",
    [
        b'"1","\xc3A\xa9",""\r\n',  # a lead byte, ASCII, a continuation byte: UTF-8 only without the ASCII
        b'"1","\xc3","\xa9"\r\n',  # a sequence split across two cells
        b'"1","\xe6\x97",""\r\n"2","\xa5",""\r\n',  # ... and across two records
    ],
)
@pytest.mark.parametrize("road", ROADS)
def test_a_multibyte_sequence_broken_by_ascii_is_not_utf8_on_either_road(
    road: str, body: bytes, tmp_path: Path
) -> None:
    page = b'"Id","A","B"\r\n' + body
    with pytest.raises(UnicodeDecodeError):
        page.decode("utf-8")  # what the csv module's road reads: not UTF-8
    for block in (1, 5, 1 << 22):
        with pytest.raises(SalesforceDataError, match="UTF-8"):
            _copy(page, COLUMNS, TYPES, tmp_path / "o.csv", block=block, road=road)


def test_a_gzip_csv_is_the_same_file_whether_its_rows_came_as_cells_or_as_copied_bytes(tmp_path: Path) -> None:
    import csv
    import io

    from plugin.salesforce.csvout import CsvSink

    columns = ["Id", "Name", "Note"]
    rows = [[f"001{i:015d}", f"name {i}", "x" * (i % 97) + ',"\r\n'] for i in range(3000)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(rows)
    data = text.getvalue().encode()
    cells = CsvSink(tmp_path / "cells.csv", columns, compress=True)  # the REST road (and the csv module's)
    for row in rows:
        cells.write_cells([row])
    raw = CsvSink(tmp_path / "raw.csv", columns, compress=True)  # the Bulk block copy
    raw.write_raw(data[:1000], 0)
    raw.write_raw(data[1000:], len(rows))
    assert cells.close() == raw.close()
    assert (tmp_path / "cells.csv.gz").read_bytes() == (tmp_path / "raw.csv.gz").read_bytes()


def test_compressed_bulk_and_rest_exports_store_the_same_gz_bytes(tmp_path: Path) -> None:
    from plugin.fakeorg import start_fake_org
    from tests.fakeorg.genorg import generated_org
    from tests.salesforce.exporting import BULK_ALL, REST_ONLY, export

    root = generated_org(tmp_path / "org", {"Account": {"count": 1500, "seed": 7}}, objects=("Account",))
    with start_fake_org(root) as fake:
        fake.app.bulk.polls_to_complete = 1
        fake.app.bulk.page_size = 600
        rest = export(fake, tmp_path / "rest", settings=REST_ONLY, compression=True)
        bulk = export(fake, tmp_path / "bulk", settings=BULK_ALL, compression=True)
    exported = {n: e for n, e in bulk.manifest["objects"].items() if e["status"] == "exported"}
    assert {e["method"] for e in exported.values()} == {"bulk"} and "Account" in exported
    for name, entry in exported.items():
        assert rest.manifest["objects"][name]["method"] == "rest"
        assert entry["sha256"] == rest.manifest["objects"][name]["sha256"], name
