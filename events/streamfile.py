"""Recorded event streams: one JSON event per line, as ``sfbackup events --json`` writes them.

Line fields: ``position, event_id, type, stream, version, schema_version, data, metadata,
correlation_id, causation_id, time, hash`` (``time`` is ``occurred_at``). Hand-written fixtures may
leave out all but type, stream, version and data; reading fills position and event_id in
deterministically from the line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from events.errors import InvalidEventError
from events.records import RecordedEvent


def event_dict(event: RecordedEvent) -> dict[str, Any]:
    """The JSON shape of one event, shared by stream files, ``sfbackup events --json`` and audits."""
    return {
        "position": event.position,
        "event_id": event.event_id,
        "type": event.type,
        "stream": event.stream_id,
        "version": event.stream_version,
        "schema_version": event.schema_version,
        "data": event.data,
        "metadata": event.metadata,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "time": event.occurred_at,
        "hash": event.hash,
    }


def to_line(event: RecordedEvent) -> str:
    """Return one stream line (no newline) for a recorded event."""
    return json.dumps(event_dict(event), ensure_ascii=False)


def _field(obj: dict[str, Any], key: str, kind: type, line_number: int) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidEventError(f"line {line_number}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def from_line(text: str, *, line_number: int) -> RecordedEvent:
    """Parse one stream line.

    Raises:
        InvalidEventError: the line is not a JSON object with at least type, stream, version, data.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidEventError(f"line {line_number}: not JSON ({e})") from e
    if not isinstance(obj, dict):
        raise InvalidEventError(f"line {line_number}: expected a JSON object")
    position = obj.get("position", line_number)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidEventError(f"line {line_number}: field 'metadata' must be an object")
    time = obj.get("time") or ""
    return RecordedEvent(
        position=int(position),
        event_id=str(obj.get("event_id") or f"line-{line_number}"),
        stream_id=_field(obj, "stream", str, line_number),
        stream_version=_field(obj, "version", int, line_number),
        type=_field(obj, "type", str, line_number),
        schema_version=int(obj.get("schema_version", 1)),
        data=_field(obj, "data", dict, line_number),
        metadata=metadata,
        correlation_id=obj.get("correlation_id"),
        causation_id=obj.get("causation_id"),
        occurred_at=str(time),
        recorded_at=str(obj.get("recorded_at") or time),
        hash=str(obj.get("hash") or ""),
    )


def read_lines(lines: Iterable[str]) -> Iterator[RecordedEvent]:
    """Parse the non-blank lines of a stream file, numbering lines from 1."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield from_line(line, line_number=number)
