"""The read-ahead thread hands over every chunk in order, its errors where they happened, and stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from plugin.salesforce.prefetch import read_ahead


def test_every_chunk_arrives_in_order() -> None:
    chunks = [bytes([i]) * i for i in range(1, 200)]
    with read_ahead(iter(chunks), depth=3) as got:
        assert list(got) == chunks


def test_an_error_of_the_reader_is_raised_after_the_chunks_before_it() -> None:
    def body() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ConnectionResetError("dropped mid-body")

    seen: list[bytes] = []
    with pytest.raises(ConnectionResetError, match="dropped mid-body"), read_ahead(body()) as got:
        for chunk in got:
            seen.append(chunk)
    assert seen == [b"a", b"b"]


def test_the_reader_stays_at_most_depth_chunks_ahead_and_stops_when_left_early() -> None:
    produced: list[int] = []
    stopped = threading.Event()

    def body() -> Iterator[bytes]:
        try:
            for i in range(1000):
                produced.append(i)
                yield b"x"
        finally:
            stopped.set()

    with pytest.raises(RuntimeError, match="consumer failed"), read_ahead(body(), depth=4) as got:
        next(got)
        deadline = time.monotonic() + 5
        while len(produced) < 6 and time.monotonic() < deadline:  # 1 taken + 4 queued + 1 waiting to be
            time.sleep(0.01)
        time.sleep(0.05)
        assert len(produced) <= 6
        raise RuntimeError("consumer failed")
    assert stopped.wait(5), "the reader went on after the consumer left"
    assert len(produced) <= 7
