"""Audit views: who started each job, and the history of one job, one org or one MCP request.

Pure functions of the events (no I/O, clock or environment), so an audit gives the same answer
from the live log, a copy of it or a recorded stream. ``Selector`` is the incremental form that
``sfbackup events --follow`` feeds live events into; ``select`` runs the same selector over a
history, so the two can never disagree about which events belong to an org.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from events import RecordedEvent
from events.ids import job_id_of, job_stream
from events.streamfile import to_line
from events.vocabulary import JobRequested, JobStarted

# The events whose data names the org a job backs up.
_ORG_TYPES = (JobRequested.TYPE, JobStarted.TYPE)


@dataclass(frozen=True)
class Selection:
    """Which events an audit shows. Every field that is set must match; none set selects all.

    ``org_id`` selects whole job streams: a job belongs to an org when its ``job.requested`` or
    ``job.started`` data carries that ``org_id``, and then all of its events belong to it.
    """

    job_id: str | None = None
    org_id: str | None = None
    correlation_id: str | None = None
    types: frozenset[str] = field(default_factory=frozenset)


class Selector:
    """Decides event by event which ones a ``Selection`` admits, in the order they arrive.

    A job stream whose org is not known yet (its first events carry none) is held back until an
    event names the org: released if it matches, dropped if not. The state is the org of each
    job stream seen, and the held events; nothing else.
    """

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self._orgs: dict[str, str] = {}
        self._held: dict[str, list[RecordedEvent]] = {}

    def feed(self, event: RecordedEvent) -> list[RecordedEvent]:
        """Take the next event (in position order); return the events admitted now, in order."""
        wanted = self.selection
        if wanted.job_id is not None and event.stream_id != job_stream(wanted.job_id):
            return []
        if wanted.org_id is None:
            return [event] if self._matches(event) else []
        if job_id_of(event.stream_id) is None:
            return []  # only job streams belong to an org
        org = _org_of(event)
        if org is not None:
            self._orgs.setdefault(event.stream_id, org)
        known = self._orgs.get(event.stream_id)
        if known is None:
            self._held.setdefault(event.stream_id, []).append(event)
            return []
        released = self._held.pop(event.stream_id, [])
        if known != wanted.org_id:
            return []
        return [e for e in (*released, event) if self._matches(e)]

    def _matches(self, event: RecordedEvent) -> bool:
        wanted = self.selection
        if wanted.correlation_id is not None and event.correlation_id != wanted.correlation_id:
            return False
        return not wanted.types or event.type in wanted.types


def _org_of(event: RecordedEvent) -> str | None:
    if event.type in _ORG_TYPES:
        org = event.data.get("org_id")
        if isinstance(org, str) and org:
            return org
    return None


def select(events: Iterable[RecordedEvent], selection: Selection) -> list[RecordedEvent]:
    """The events of a history that ``selection`` admits, in position order."""
    selector = Selector(selection)
    admitted = [out for event in events for out in selector.feed(event)]
    return sorted(admitted, key=lambda e: e.position)


def job_history(events: Iterable[RecordedEvent], job_id: str) -> list[RecordedEvent]:
    """Every event of one job, in order."""
    return select(events, Selection(job_id=job_id))


def org_history(events: Iterable[RecordedEvent], org_id: str) -> list[RecordedEvent]:
    """Every event of the jobs that back up one org, in order."""
    return select(events, Selection(org_id=org_id))


def correlation_history(events: Iterable[RecordedEvent], correlation_id: str) -> list[RecordedEvent]:
    """The events recorded for one MCP request (their ``correlation_id``), in order."""
    return select(events, Selection(correlation_id=correlation_id))


@dataclass(frozen=True)
class JobOrigin:
    """Who and what started a job: its ``job.requested`` event, and the worker that ran it."""

    job_id: str
    requested_at: str
    position: int
    event_id: str
    org_id: str | None
    backup_type: str | None
    actor: str | None
    tool: str | None
    user: str | None
    host: str | None
    pid: int | None
    auth: str | None
    correlation_id: str | None
    worker_id: str | None = None
    worker_pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _origin(event: RecordedEvent, job_id: str) -> JobOrigin:
    meta, data = event.metadata, event.data
    return JobOrigin(
        job_id=job_id,
        requested_at=event.occurred_at,
        position=event.position,
        event_id=event.event_id,
        org_id=_text(data.get("org_id")),
        backup_type=_text(data.get("backup_type")),
        actor=_text(meta.get("actor")),
        tool=_text(meta.get("tool")),
        user=_text(meta.get("user")),
        host=_text(meta.get("host")),
        pid=_number(meta.get("pid")),
        auth=_text(meta.get("auth")),
        correlation_id=event.correlation_id,
    )


def job_origins(events: Iterable[RecordedEvent]) -> list[JobOrigin]:
    """Who started each job, in request order; the worker is the first ``job.started``'s."""
    origins: dict[str, JobOrigin] = {}
    started: set[str] = set()
    for event in events:
        job_id = job_id_of(event.stream_id)
        if job_id is None:
            continue
        if event.type == JobRequested.TYPE and job_id not in origins:
            origins[job_id] = _origin(event, job_id)
        elif event.type == JobStarted.TYPE and job_id in origins and job_id not in started:
            started.add(job_id)
            origins[job_id] = replace(
                origins[job_id], worker_id=_text(event.data.get("worker_id")), worker_pid=_number(event.data.get("pid"))
            )
    return sorted(origins.values(), key=lambda o: o.position)


def export_lines(events: Iterable[RecordedEvent]) -> Iterator[str]:
    """JSON lines (no newlines), the same dicts as ``sfbackup events --json``."""
    for event in events:
        yield to_line(event)
