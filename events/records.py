"""The record side of an event, separate from its meaning: what producers hand in and what reads give back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.chain import canonical_json
from events.errors import InvalidEventError
from events.ids import new_event_id
from events.vocabulary import require_known


def utc_now() -> str:
    """Return the current time as RFC 3339 UTC with milliseconds and ``Z``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True, init=False)
class NewEvent:
    """An event not yet appended. Type is checked against the vocabulary, data must be JSON-safe.

    Keep the same object (or at least its ``event_id``) for a retry: the id is the idempotency key.
    """

    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    event_id: str
    schema_version: int
    correlation_id: str | None
    causation_id: str | None
    occurred_at: str

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
        require_known(type)
        if not isinstance(data, Mapping) or not isinstance(metadata or {}, Mapping):
            raise InvalidEventError("event data and metadata must be JSON objects (dicts)")
        if isinstance(schema_version, bool) or not isinstance(schema_version, int) or schema_version < 1:
            raise InvalidEventError(f"schema_version must be an int >= 1, got {schema_version!r}")
        if event_id is not None and not (isinstance(event_id, str) and event_id):
            raise InvalidEventError("event_id must be a non-empty string")
        # Fail at construction, where the producer's stack trace is, not at append time.
        canonical_json(data)
        canonical_json(metadata or {})
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "data", dict(data))
        object.__setattr__(self, "metadata", dict(metadata or {}))
        object.__setattr__(self, "event_id", event_id or new_event_id())
        object.__setattr__(self, "schema_version", schema_version)
        object.__setattr__(self, "correlation_id", correlation_id)
        object.__setattr__(self, "causation_id", causation_id)
        object.__setattr__(self, "occurred_at", occurred_at or utc_now())


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
