"""The event vocabulary and the append-only SQLite log. Knows nothing of Salesforce or MCP."""

from events.chain import ChainReport
from events.errors import (
    ChainError,
    ConcurrencyError,
    EventLogError,
    IdempotencyConflictError,
    InvalidEventError,
    LogIntegrityError,
    StorageFullError,
    StoreBusyError,
    UnknownEventTypeError,
)
from events.follow import Follower
from events.ids import job_stream, new_event_id, new_job_id
from events.log import EventLog, Transaction
from events.records import NewEvent, RecordedEvent

__all__ = [
    "ChainError",
    "ChainReport",
    "ConcurrencyError",
    "EventLog",
    "EventLogError",
    "Follower",
    "IdempotencyConflictError",
    "InvalidEventError",
    "LogIntegrityError",
    "NewEvent",
    "RecordedEvent",
    "StorageFullError",
    "StoreBusyError",
    "Transaction",
    "UnknownEventTypeError",
    "job_stream",
    "new_event_id",
    "new_job_id",
]
