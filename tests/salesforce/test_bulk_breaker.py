"""Attempts to break the Bulk page copy (bulkrows.py): each case is a page the csv module reads
one way and the block copy must read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.salesforce.errors import SalesforceDataError
from tests.salesforce.test_bulk_exactness import _copy

COLUMNS, TYPES = ["Id", "A", "B"], {"Id": "id", "A": "string", "B": "string"}


@pytest.mark.parametrize(
    "body",
    [
        b'"1","\xc3A\xa9",""\r\n',  # a lead byte, ASCII, a continuation byte: UTF-8 only without the ASCII
        b'"1","\xc3","\xa9"\r\n',  # a sequence split across two cells
        b'"1","\xe6\x97",""\r\n"2","\xa5",""\r\n',  # ... and across two records
    ],
)
def test_a_multibyte_sequence_broken_by_ascii_is_not_utf8_on_either_road(body: bytes, tmp_path: Path) -> None:
    page = b'"Id","A","B"\r\n' + body
    with pytest.raises(UnicodeDecodeError):
        page.decode("utf-8")  # what the csv module's road reads: not UTF-8
    for block in (1, 5, 1 << 22):
        with pytest.raises(SalesforceDataError, match="UTF-8"):
            _copy(page, COLUMNS, TYPES, tmp_path / "o.csv", block=block)
