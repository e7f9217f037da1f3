"""The record side of an event, separate from its meaning: what producers hand in and what reads give back."""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from orjson import JSONEncodeError

from events.chain import canonical_json
from events.errors import InvalidEventError
from events.ids import event_id_prefix, random_tail, take_tail
from events.jsontext import all_plain_scalars
from events.vocabulary import REGISTRY, require_known

_type = builtins.type  # NewEvent's first parameter is named type
_set_dict = object.__setattr__
_time_ns = time.time_ns
_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
_EMPTY: Mapping[str, Any] = {}  # never handed out: NewEvent stores a copy
_MILLIS = tuple(f"{ms:03d}Z" for ms in range(1000))
# The last clock reading's millisecond, its UUIDv7 prefix and its RFC 3339 text: an event's id and
# occurred_at come from one reading, formatted once per millisecond (a tuple: replaced atomically).
_clock: tuple[int, str, str] = (-1, "", "")
_second: tuple[int, str] = (-1, "")


def _formatted(millis: int) -> str:
    global _second
    seconds = millis // 1000
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)))
    return cached[1] + _MILLIS[millis % 1000]


def _tick(millis: int) -> tuple[int, str, str]:
    global _clock
    clock = _clock = (millis, event_id_prefix(millis), _formatted(millis))
    return clock


def _now() -> tuple[int, str, str]:
    millis = _time_ns() // 1_000_000
    clock = _clock
    return clock if clock[0] == millis else _tick(millis)


def utc_now() -> str:
    """Return the current time as RFC 3339 UTC with milliseconds and ``Z``."""
    return _now()[2]


@dataclass(frozen=True, init=False)
class NewEvent:
    """An event not yet appended. Type is checked against the vocabulary, data must be JSON-safe.

    Keep the same object (or at least its ``event_id``) for a retry: the id is the idempotency key.
    ``data_json`` and ``metadata_json`` are the canonical texts that get stored and hashed, made
    once here: what is recorded is the data as it was when the event was made.
    """

    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    event_id: str
    schema_version: int
    correlation_id: str | None
    causation_id: str | None
    occurred_at: str
    data_json: str = field(init=False, repr=False, compare=False)
    metadata_json: str = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        schema_version: int = 1,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        occurred_at: str | None = None,
    ) -> None:
        if type not in REGISTRY:
            require_known(type)
        meta = metadata or _EMPTY
        # The exact-dict test first: an ABC isinstance check costs more than the rest of this line.
        if not (_type(data) is dict or isinstance(data, Mapping)) or not (
            _type(meta) is dict or isinstance(meta, Mapping)
        ):
            raise InvalidEventError("event data and metadata must be JSON objects (dicts)")
        if not (_type(schema_version) is int and schema_version >= 1) and (
            isinstance(schema_version, bool) or not isinstance(schema_version, int) or schema_version < 1
        ):
            raise InvalidEventError(f"schema_version must be an int >= 1, got {schema_version!r}")
        if event_id is not None and not (isinstance(event_id, str) and event_id):
            raise InvalidEventError("event_id must be a non-empty string")
        # The hash covers these as given and the table stores them as text: anything but a string
        # would be stored other than it was hashed, and the chain would no longer verify.
        if (correlation_id is not None and _type(correlation_id) is not str) or (
            causation_id is not None and _type(causation_id) is not str
        ):
            name, value = (
                ("correlation_id", correlation_id)
                if correlation_id is not None and _type(correlation_id) is not str
                else ("causation_id", causation_id)
            )
            raise InvalidEventError(f"{name} must be a string or None, got {_type(value).__name__}")
        if occurred_at is not None and _type(occurred_at) is not str:
            raise InvalidEventError(f"occurred_at must be an RFC 3339 string, got {_type(occurred_at).__name__}")
        # Fail at construction, where the producer's stack trace is, not at append time. The usual
        # data, an exact dict of plain scalars, goes to orjson here: canonical_json would make the
        # same test and the same call, one call deeper (a tenth of making an event).
        if _type(data) is dict and all_plain_scalars(map(_type, data.values())):
            try:  # a plain try: contextlib.suppress costs as much as the dumps
                data_json = _dumps(data, option=_SORT_KEYS).decode()
            except JSONEncodeError:  # an int beyond 64 bits, a lone surrogate: the reference decides
                data_json = canonical_json(data)
        else:
            data_json = canonical_json(data)
        metadata_json = canonical_json(meta) if meta else "{}"  # most events carry no metadata
        if not event_id or occurred_at is None:
            # One clock reading for both, _now() and random_tail() written out (their two Python
            # calls were 0.8k of the 25k machine instructions an event took).
            millis = _time_ns() // 1_000_000
            clock = _clock
            if clock[0] != millis:
                clock = _tick(millis)
            if not event_id:
                try:
                    event_id = clock[1] + take_tail()
                except IndexError:  # the pool is empty once every 256 ids
                    event_id = clock[1] + random_tail()
            occurred_at = occurred_at or clock[2]
        # Frozen: set the instance dict in one step (ten object.__setattr__ calls cost a third
        # of constructing an event, and a dict display less than update(**kwargs)).
        _set_dict(
            self,
            "__dict__",
            {
                "type": type,
                "data": dict(data),
                "metadata": dict(meta) if meta else {},
                "event_id": event_id,
                "schema_version": schema_version,
                "correlation_id": correlation_id,
                "causation_id": causation_id,
                "occurred_at": occurred_at,
                "data_json": data_json,
                "metadata_json": metadata_json,
            },
        )


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: global position, stream version, payload as dicts, hash as hex.

    ``data`` is the stored payload of ``schema_version``; ``events.codec.decode`` upcasts it.
    """

    position: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    occurred_at: str
    recorded_at: str
    hash: str


EventRow = tuple[int, str, int, str, int, str, str]
"""A stored event as projections fold over it: ``(position, stream_id, stream_version, type,
schema_version, data, occurred_at)``, ``data`` as its stored JSON text.

A plain tuple, not a NamedTuple: ``Transaction.read_rows`` returns one per event of a rebuild, and
building a NamedTuple costs more than the SQLite read of the row.
"""
