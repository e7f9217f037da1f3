"""Identifier minting: UUIDv7 event ids (idempotency keys) and ULID job ids.

Both are time-ordered: UUIDv7 keeps the ``event_id`` UNIQUE index append-friendly (random v4 keys
cost ~30 % of batch throughput) and ULID job ids sort by creation time in folder names and listings.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_event_id() -> str:
    """Return a fresh UUIDv7 string (RFC 9562): 48-bit unix milliseconds, then random bits.

    Built from hex text (every appended event needs one): version nibble 7, variant 10, and 74
    random bits (12 + 62), exactly the fields of the RFC layout.
    """
    millis = time.time_ns() // 1_000_000
    h = (millis & 0xFFFF_FFFF_FFFF).to_bytes(6, "big").hex() + os.urandom(10).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


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
