"""Errors of the event log layer: one base class, so a shell needs one ``except`` clause.

Tree::

    EventLogError                    anything the event log refuses or cannot do
    ├── ConcurrencyError             expected stream version did not match (stream_id, expected, actual)
    ├── IdempotencyConflictError     an event_id was reused for a different payload
    ├── StoreBusyError               the database stayed locked past the busy timeout
    ├── StorageFullError             the disk (or quota) holding the database is full
    ├── UnknownEventTypeError        an event type missing from the vocabulary registry
    ├── InvalidEventError            a payload or stream line that cannot be encoded or decoded
    └── LogIntegrityError            the file is not a log we can trust (missing trigger, quick_check)
        └── ChainError               the hash chain is broken or the log was rewritten

sqlite3 errors are translated into these in ``events/log.py`` only (``raise ... from e``).
"""

from __future__ import annotations


class EventLogError(Exception):
    """Base of every error raised by the ``events`` package."""


class ConcurrencyError(EventLogError):
    """The stream moved on since the caller read it: re-read the stream and decide again."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not the expected {expected}; "
            "re-read the stream and retry the decision"
        )


class IdempotencyConflictError(EventLogError):
    """The event id was already used for another payload: producers must mint a new id."""

    def __init__(self, event_id: str, reason: str) -> None:
        self.event_id = event_id
        self.reason = reason
        super().__init__(f"event id {event_id!r} {reason}; use a fresh event id for a different event")


class StoreBusyError(EventLogError):
    """Another writer held the database lock past the busy timeout.

    With ``BEGIN IMMEDIATE`` everywhere this is a bug signal (a long write transaction somewhere),
    not something to retry forever.
    """


class StorageFullError(EventLogError):
    """SQLite could not grow the database or its WAL: nothing more is recorded until space is freed."""


class UnknownEventTypeError(EventLogError):
    """The event type is not in ``events.vocabulary``: add a payload class before appending it."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}; register a payload class in events/vocabulary.py")


class InvalidEventError(EventLogError):
    """A payload, metadata or stream line that is not valid for the log (not JSON, missing field, ...)."""


class LogIntegrityError(EventLogError):
    """The database is not an event log we can trust; refuse to run rather than guess."""


class ChainError(LogIntegrityError):
    """The hash chain does not link: a writer forked it or someone rewrote history."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)
