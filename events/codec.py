"""Maps payload classes to stored events and back, upcasting old schema versions on read.

Upcasters (``events/upcasters.py``) are pure functions keyed by ``(type, schema_version)`` that turn
the data of version n into version n + 1, named ``upcast_<type>_v<n>_v<n+1>``. Stored events are
never rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.errors import InvalidEventError
from events.jsontext import loads, loads_plain
from events.records import NewEvent, RecordedEvent
from events.upcasters import UPCASTERS, Upcaster
from events.vocabulary import REGISTRY, EventPayload, require_known

__all__ = ["UPCASTERS", "Upcaster", "decode", "decode_data", "encode"]


def encode(
    payload: EventPayload,
    *,
    metadata: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    occurred_at: str | None = None,
) -> NewEvent:
    """Return the NewEvent for a payload at its class's current schema version."""
    return NewEvent(
        payload.TYPE,
        payload.to_data(),
        metadata=metadata,
        event_id=event_id,
        schema_version=payload.SCHEMA_VERSION,
        correlation_id=correlation_id,
        causation_id=causation_id,
        occurred_at=occurred_at,
    )


def decode_data(
    event_type: str,
    schema_version: int,
    data: Mapping[str, Any],
    *,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> EventPayload:
    """Upcast stored data to the current schema version and build its payload.

    Raises:
        UnknownEventTypeError: the type is not in the vocabulary.
        InvalidEventError: no upcaster for a step, a version from the future, or a malformed payload.
    """
    cls = require_known(event_type)
    if not (type(data) is dict or isinstance(data, Mapping)):
        raise InvalidEventError(f"{event_type} data must be a JSON object, got {type(data).__name__}")
    if schema_version == cls.SCHEMA_VERSION:
        return cls.from_data(data)  # nothing to upcast, and from_data does not change its input
    current = dict(data)
    version = schema_version
    while version < cls.SCHEMA_VERSION:
        step = upcasters.get((event_type, version))
        if step is None:
            raise InvalidEventError(f"no upcaster for {event_type} schema version {version} -> {version + 1}")
        current = step(current)
        version += 1
    if version > cls.SCHEMA_VERSION:
        raise InvalidEventError(
            f"{event_type} has schema version {version}, newer than this code's {cls.SCHEMA_VERSION}; upgrade sfbackup"
        )
    return cls.from_data(current)


def decode(recorded: RecordedEvent) -> EventPayload:
    """Return the typed payload of a recorded event (upcast to the current version)."""
    return decode_data(recorded.type, recorded.schema_version, recorded.data)


def decode_stored(
    event_type: str,
    schema_version: int,
    data_text: str,
    *,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> EventPayload:
    """``decode_data`` of the stored JSON text: the same payload, or the same error, as after ``json.loads``.

    The fast parse differs from ``json.loads`` only in turning integers beyond 64 bits into floats,
    which no payload field accepts as an int or a string; so when ``from_data`` accepts the fast
    parse, the slow one gives the same payload. Anything else (a refusal, an upcast, which could
    turn such a float into something acceptable) takes the exact parse.

    Raises:
        UnknownEventTypeError: the type is not in the vocabulary.
        InvalidEventError: as ``decode_data``, or the text is not JSON.
    """
    cls = REGISTRY.get(event_type)
    if cls is not None and schema_version == cls.SCHEMA_VERSION:
        try:
            data = loads_plain(data_text)
            if type(data) is dict:
                return cls.from_data(data)
        except Exception:
            pass  # the exact path below gives the authoritative answer
    try:
        data = loads(data_text)
    except ValueError as e:  # only a row written around EventLog (no CHECK keeps it out since migration 4)
        raise InvalidEventError(f"{event_type} data is not JSON: {e}") from e
    return decode_data(event_type, schema_version, data, upcasters=upcasters)
