from __future__ import annotations

import csv
import gzip
import hashlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.salesforce.csvout import CsvSink, dump_json, render_cell
from plugin.salesforce.literal import NumberLiteral


def read_back(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return list(csv.reader(fh, strict=True))


def test_render_cell_keeps_number_literals_and_booleans_exact() -> None:
    assert render_cell(NumberLiteral("9999999999999999.99")) == "9999999999999999.99"
    assert render_cell(NumberLiteral("1.50")) == "1.50"
    assert render_cell(123456789012345678) == "123456789012345678"
    assert render_cell(True) == "true"
    assert render_cell(False) == "false"
    assert render_cell(None) == ""
    assert render_cell("2024-03-05T14:07:09.000+0000") == "2024-03-05T14:07:09.000+0000"


def test_dump_json_writes_literals_raw_and_drops_attributes() -> None:
    value = {"attributes": {"type": "X"}, "latitude": NumberLiteral("37.774900"), "city": "São Paulo", "n": None}
    assert dump_json(value) == '{"latitude":37.774900,"city":"São Paulo","n":null}'


def test_csv_sink_round_trips_awkward_text(tmp_path: Path) -> None:
    values = ["a,b", 'say "hi"', "line1\nline2", "cr\ronly", "crlf\r\nend", " padded ", "東京 🚀 👩‍💻", "\t", ""]
    sink = CsvSink(tmp_path / "X.csv", ["Id", "Text"])
    for i, v in enumerate(values):
        sink.write({"Id": f"id{i}", "Text": v})
    sha = sink.close()
    rows = read_back(tmp_path / "X.csv")
    assert rows[0] == ["Id", "Text"]
    assert [r[1] for r in rows[1:]] == values
    assert sha == hashlib.sha256((tmp_path / "X.csv").read_bytes()).hexdigest()
    assert sink.rows == len(values)


def test_csv_sink_compresses_with_gzip_and_hashes_the_gz_file(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "X.csv", ["Id"], compress=True)
    sink.write({"Id": "001"})
    sha = sink.close()
    assert sink.path.name == "X.csv.gz"
    assert read_back(sink.path) == [["Id"], ["001"]]
    assert sha == hashlib.sha256(sink.path.read_bytes()).hexdigest()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")), max_size=8))
def test_any_text_survives_a_csv_round_trip(values: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        sink = CsvSink(Path(d) / "T.csv", ["Id", "Text"])
        for i, v in enumerate(values):
            sink.write({"Id": str(i), "Text": v})
        sink.close()
        rows = read_back(Path(d) / "T.csv")
    assert [r[1] for r in rows[1:]] == values


def test_the_sha256_is_of_the_bytes_on_disk_also_after_a_rewind(tmp_path: Path) -> None:
    """The hash is taken as bytes pass (no second read); a rewind that cuts hashed bytes falls back
    to reading the file, and a rewind to where the file already is changes nothing."""
    for cut in (False, True):
        sink = CsvSink(tmp_path / f"rewind-{cut}.csv", ["Id", "Name"])
        sink.write({"Id": "1", "Name": "kept"})
        mark = sink.mark()
        sink.rewind(mark)  # a page's first try rewinds to where it starts: nothing cut
        sink.write({"Id": "2", "Name": "cut" if cut else "kept too"})
        if cut:
            sink.rewind(mark)
            sink.write({"Id": "2", "Name": "again"})
        digest = sink.close()
        data = sink.path.read_bytes()
        assert digest == hashlib.sha256(data).hexdigest()
        assert data.endswith(b'"2","again"\r\n' if cut else b'"2","kept too"\r\n')
