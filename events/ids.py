"""Identifier minting: UUIDv7 event ids (idempotency keys) and ULID job ids.

Both are time-ordered: UUIDv7 keeps the ``event_id`` UNIQUE index append-friendly (random v4 keys
cost ~30 % of batch throughput) and ULID job ids sort by creation time in folder names and listings.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

_millis_prefix: tuple[int, str] = (-1, "")
_TAILS_PER_DRAW = 256
# Tails not yet handed out. Always this one list (refilled, never replaced), so callers can bind
# its ``pop`` once: a C call where a Python function call cost as much as a tenth of an event.
TAIL_POOL: list[str] = []
take_tail = TAIL_POOL.pop  # IndexError when empty: then call random_tail(), which refills
# Byte maps applied to a whole draw at once: the version nibble 7 over a byte's high nibble, and
# the variant bits 10 over the top of a byte.
_VERSION_BYTE = bytes(0x70 | (b & 0x0F) for b in range(256))
_VARIANT_BYTE = bytes(0x80 | (b & 0x3F) for b in range(256))


def _draw_tails() -> list[str]:
    """The last 16 hex digits of 256 ids (version nibble onwards) from one ``os.urandom`` call.

    A system call per id cost a third of making one, and so did formatting each tail with
    Python slices; here the bits are set and the text is cut by C loops over the whole draw
    (``translate`` on every fourth byte, ``hex`` with a separator, ``split``).
    """
    r = os.urandom(10 * _TAILS_PER_DRAW)
    # 4 bytes per tail for "7xxx-Vxxx" (version, 12 random bits, variant, 14 random bits)
    head = bytearray(r[: 4 * _TAILS_PER_DRAW])
    head[0::4] = head[0::4].translate(_VERSION_BYTE)
    head[2::4] = head[2::4].translate(_VARIANT_BYTE)
    pairs = head.hex(" ", 2).split()
    nodes = r[4 * _TAILS_PER_DRAW :].hex(" ", 6).split()  # 48 random bits per tail
    return list(map("-".join, zip(pairs[0::2], pairs[1::2], nodes, strict=True)))


def _forget_tails() -> None:
    TAIL_POOL.clear()


# A forked child must not hand out the tails its parent will also hand out.
os.register_at_fork(after_in_child=_forget_tails)


def random_tail() -> str:
    """The last 22 characters of a UUIDv7: ``7xxx-Vxxx-xxxxxxxxxxxx``, version nibble 7, 12 random
    bits, variant 10, 62 random bits.

    Each tail is handed out once: ``list.pop`` is atomic under the GIL, and two threads that find
    the pool empty at once both refill it, which only adds tails.
    """
    while True:
        try:
            return take_tail()
        except IndexError:
            TAIL_POOL.extend(_draw_tails())


def event_id_prefix(millis: int) -> str:
    """The first 14 characters of a UUIDv7 minted at ``millis``: its 48-bit time, with dashes."""
    t = (millis & 0xFFFF_FFFF_FFFF).to_bytes(6, "big").hex()
    return f"{t[:8]}-{t[8:12]}-"


def new_event_id() -> str:
    """Return a fresh UUIDv7 string (RFC 9562): 48-bit unix milliseconds, then random bits.

    Written as hex text (every appended event needs one): the millisecond part, formatted once
    per millisecond, then version nibble 7, 12 random bits, variant 10, 62 random bits.
    """
    global _millis_prefix
    millis = time.time_ns() // 1_000_000
    prefix = _millis_prefix
    if prefix[0] != millis:
        prefix = _millis_prefix = (millis, event_id_prefix(millis))
    return prefix[1] + random_tail()


def new_job_id() -> str:
    """Return a fresh ULID in lowercase Crockford base32: 26 chars, sortable by creation time."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def job_stream(job_id: str) -> str:
    """Return the stream id of a job: ``job-<job_id>``."""
    return f"job-{job_id}"


def job_id_of(stream_id: str) -> str | None:
    """Return the job id a stream belongs to, or None for a stream that is not a job's."""
    if stream_id.startswith("job-") and len(stream_id) > 4:
        return stream_id[4:]
    return None
