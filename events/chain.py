"""Canonical JSON and the SHA-256 hash chain that makes the log tamper-evident.

``hash_i = sha256(prev_hash_i || canonical_json([event_id, stream_id, stream_version, type,
schema_version, data, metadata, correlation_id, causation_id, occurred_at]))`` where ``data`` and
``metadata`` are the stored JSON *texts* (never re-serialised), so the check does not depend on how
a JSON library orders or spells numbers. The first ``prev_hash`` is 32 zero bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from events.errors import InvalidEventError
from events.jsontext import all_plain_scalars, dumps_canonical, dumps_plain_list

GENESIS_HASH = bytes(32)


def canonical_json(value: Any) -> str:
    """Serialise sorted, without whitespace, UTF-8 as is; NaN and infinities are refused.

    The text is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    byte for byte (``events.jsontext`` takes a faster path where that is proven to give the same).

    Raises:
        InvalidEventError: the value is not JSON-safe.
    """
    # The usual event data, a flat dict of plain values, straight to orjson (dumps_canonical would
    # take the same path, one call later).
    if type(value) is dict and all_plain_scalars(map(type, value.values())):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except orjson.JSONEncodeError:
            pass
    try:
        return dumps_canonical(value)  # also refuses lone surrogates: UTF-8 cannot hold them
    except (TypeError, ValueError, RecursionError) as e:  # UnicodeEncodeError is a ValueError
        raise InvalidEventError(f"not JSON-safe: {e}") from e


@dataclass(frozen=True)
class ChainFields:
    """The stored columns that enter an event's hash (data and metadata as stored text)."""

    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: str
    metadata: str
    correlation_id: str | None
    causation_id: str | None
    occurred_at: str


ChainTuple = tuple[str, str, int, str, int, str, str, str | None, str | None, str]
"""(event_id, stream_id, stream_version, type, schema_version, data, metadata, correlation_id,
causation_id, occurred_at): the fields an event's hash covers, in order."""


def chain_body(fields: ChainTuple) -> bytes:
    """The UTF-8 bytes of the canonical JSON array an event's hash covers.

    Raises:
        InvalidEventError: a field is not JSON-safe (a lone surrogate, an odd type).
    """
    body = dumps_plain_list(fields)
    if body is None:
        body = canonical_json(list(fields)).encode("utf-8")
    return body


def event_hash(prev_hash: bytes, fields: ChainFields) -> bytes:
    """Return the 32-byte hash that links an event to its predecessor."""
    body = chain_body(
        (
            fields.event_id,
            fields.stream_id,
            fields.stream_version,
            fields.type,
            fields.schema_version,
            fields.data,
            fields.metadata,
            fields.correlation_id,
            fields.causation_id,
            fields.occurred_at,
        )
    )
    return hashlib.sha256(prev_hash + body).digest()


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a chain check: the first bad position and what is wrong with it, if any."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ChainRow:
    """One stored row as the verifier sees it."""

    position: int
    fields: ChainFields
    prev_hash: bytes
    hash: bytes
    # SQLite's json_valid of data and metadata (CHECKs that migration 4 dropped from the table)
    valid_json: bool = True


def verify_rows(
    rows: Iterable[ChainRow], *, anchor: tuple[int, str] | None = None, start_hash: bytes = GENESIS_HASH
) -> ChainReport:
    """Walk rows in position order and report the first one that breaks the chain.

    Checks, per row: positions follow each other without gaps (a deleted row leaves one), each
    stream's versions follow each other (from its first row here on), the stored ``prev_hash`` is
    the previous row's hash, the stored hash is the recomputed one, data and metadata are JSON, and
    stream id and type have 1-200 and 1-100 characters (what ``EventLog`` writes; the table no
    longer refuses anything else, see migration 4). An ``anchor`` (position, hex hash) recorded
    elsewhere catches a truncated or rewritten tail.
    """
    checked = 0
    expected_prev = start_hash
    last_position = 0
    versions: dict[str, int] = {}
    anchor_seen = anchor is None
    for row in rows:
        checked += 1
        if last_position and row.position != last_position + 1:
            return ChainReport(
                False, checked, row.position, f"gap: position {last_position} is followed by {row.position}"
            )
        stream, version = row.fields.stream_id, row.fields.stream_version
        before = versions.get(stream, version - 1 if start_hash != GENESIS_HASH else 0)
        if version != before + 1:
            return ChainReport(False, checked, row.position, f"stream {stream} goes from version {before} to {version}")
        versions[stream] = version
        if row.prev_hash != expected_prev:
            return ChainReport(False, checked, row.position, "prev_hash does not match the previous event's hash")
        if event_hash(row.prev_hash, row.fields) != row.hash:
            return ChainReport(False, checked, row.position, "stored hash does not match the event's content")
        if not row.valid_json:
            return ChainReport(False, checked, row.position, "data or metadata is not valid JSON")
        if not (1 <= len(stream) <= 200 and 1 <= len(row.fields.type) <= 100):
            return ChainReport(
                False, checked, row.position, "stream id or type is empty or too long (at most 200 and 100 characters)"
            )
        if anchor is not None and row.position == anchor[0]:
            if row.hash.hex() != anchor[1].lower():
                return ChainReport(False, checked, row.position, "hash differs from the anchor recorded for it")
            anchor_seen = True
        expected_prev = row.hash
        last_position = row.position
    if not anchor_seen:
        assert anchor is not None
        return ChainReport(False, checked, None, f"anchor position {anchor[0]} is missing: the log was truncated")
    return ChainReport(True, checked)
