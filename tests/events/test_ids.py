"""UUIDv7 event ids drawn from a pool of random tails: format, uniqueness across threads and forks."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest

from events import NewEvent, new_event_id
from events.ids import _TAILS_PER_DRAW, random_tail

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_ids_are_uuid7_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(3 * _TAILS_PER_DRAW)]  # crosses two refills of the pool
    after = time.time_ns() // 1_000_000
    assert all(UUID7.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    for i in ids:
        parsed = uuid.UUID(i)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after


def test_new_event_shares_one_clock_reading_for_id_and_time() -> None:
    event = NewEvent("job.progress", {"percent": 1})
    millis = uuid.UUID(event.event_id).int >> 80
    formatted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"
    assert event.occurred_at == formatted


def test_threads_never_get_the_same_tail() -> None:
    seen: list[list[str]] = [[] for _ in range(4)]

    def mint(bucket: list[str]) -> None:
        bucket.extend(random_tail() for _ in range(5 * _TAILS_PER_DRAW))

    threads = [threading.Thread(target=mint, args=(bucket,)) for bucket in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tails = [tail for bucket in seen for tail in bucket]
    assert len(tails) == 4 * 5 * _TAILS_PER_DRAW
    assert len(set(tails)) == len(tails)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_tails() -> None:
    random_tail()  # the pool now holds tails the child would otherwise inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next tails and leave without running pytest's teardown
        os.close(read_end)
        os.write(write_end, "\n".join(random_tail() for _ in range(8)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split("\n")
    os.waitpid(pid, 0)
    parent = [random_tail() for _ in range(8)]
    assert len(child) == 8
    assert not set(child) & set(parent)


def test_every_random_digit_of_a_tail_takes_every_value() -> None:
    """The bits set by whole-draw byte maps (version, variant) leave the random digits around them random."""
    tails = [random_tail() for _ in range(16 * _TAILS_PER_DRAW)]
    assert {len(tail) for tail in tails} == {22}
    assert {tail[0] for tail in tails} == {"7"} and {tail[4] + tail[9] for tail in tails} == {"--"}
    assert {tail[5] for tail in tails} == set("89ab")
    digits = [i for i in range(22) if i not in (0, 4, 5, 9)]
    for i in digits:
        assert {tail[i] for tail in tails} == set("0123456789abcdef"), f"digit {i} of the tail is not random"
