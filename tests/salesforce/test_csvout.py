from __future__ import annotations

import csv
import gzip
import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
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


def _records(first: int, count: int) -> bytes:
    return b"".join(b'"%d","%s"\r\n' % (i, b"x" * (i % 300)) for i in range(first, first + count))


def test_big_blocks_written_by_the_thread_keep_their_order_among_small_writes(tmp_path: Path) -> None:
    """Bulk blocks (>= _Hashed.BIG) are hashed and written by a thread; rows written as cells,
    small blocks, a mark and a rewind between them still land in order, and the hash is the file's."""
    from plugin.salesforce.csvout import _Hashed

    big = [_records(n * 10_000, 10_000) for n in range(5)]
    assert all(len(b) >= _Hashed.BIG for b in big)
    sink = CsvSink(tmp_path / "X.csv", ["Id", "Name"])
    sink.write_raw(big[0], 10_000)
    sink.write({"Id": "a", "Name": "cell"})  # text after a block the thread may still hold
    sink.write_raw(big[1], 10_000)
    sink.write_raw(b'"b","small"\r\n', 1)
    mark = sink.mark()
    assert mark == (len(b'"Id","Name"\r\n') + len(big[0]) + len(b'"a","cell"\r\n') + len(big[1]) + 13, 20_002)
    sink.write_raw(big[2], 10_000)
    sink.write_raw(big[3], 10_000)
    sink.rewind(mark)  # a page fetched again: the thread's blocks since the mark are cut
    sink.write_raw(big[4], 10_000)
    digest = sink.close()
    expected = b'"Id","Name"\r\n' + big[0] + b'"a","cell"\r\n' + big[1] + b'"b","small"\r\n' + big[4]
    assert sink.path.read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest() and sink.rows == 30_002


class _FullDisk(io.FileIO):
    """A file whose second big write fails as a full disk does."""

    writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        if self.writes == 3:  # the header, the first block, then this
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_what_the_writer_thread_raises_is_raised_by_the_next_write_or_flush(tmp_path: Path) -> None:
    from plugin.salesforce.csvout import _Hashed

    block = _records(0, 10_000)
    for then in ("write", "flush", "finish"):
        disk = _FullDisk(tmp_path / f"{then}.csv", "w")
        hashed = _Hashed(disk)
        hashed.write(b'"Id","Name"\r\n')
        hashed.write(block)
        hashed.write(block)  # fails in the thread
        with pytest.raises(OSError, match="No space left"):  # raised by that very call
            if then == "write":
                hashed.write(b"more")
            elif then == "flush":
                hashed.flush()
            else:
                hashed.finish()
        hashed.finish()  # raised once; the thread has ended
        disk.close()
        assert (tmp_path / f"{then}.csv").read_bytes() == b'"Id","Name"\r\n' + block  # what came before it
