"""The audit trail as the shells read it: the selected history, then (when following) live events.

One ``Selector`` sees the history and the live events, so ``--org`` means the same thing in both,
and the follower starts right after the last event read, so nothing falls between the two.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from events import EventLog, Follower, RecordedEvent
from events.ids import job_stream
from plugin.errors import JobNotFoundError
from plugin.homelog import open_event_log
from projections import job_status
from projections.audit import JobOrigin, Selection, Selector, job_origins, select
from projections.job_status import JobStatus

# A job has ended (for now) in these statuses; a retry may start it again later.
ENDED_STATUSES = frozenset({"completed", "failed", "cancelled", "interrupted"})


def trail(
    path: Path,
    selection: Selection,
    *,
    after: int = 0,
    follow: bool = False,
    until_ended: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[RecordedEvent]:
    """Yield the selected events with position > ``after``; with ``follow``, keep yielding new ones.

    ``until_ended`` (needs ``selection.job_id``) returns once the job's status is one of
    ``ENDED_STATUSES``, also when it had ended before following began. ``stop`` ends following.
    """
    if until_ended and selection.job_id is None:
        raise ValueError("until_ended needs a job to watch (selection.job_id)")
    stream = None if selection.job_id is None else job_stream(selection.job_id)
    selector = Selector(selection)
    status: JobStatus | None = None
    with open_event_log(path) as log:
        if stream is not None:
            history = log.read_stream(stream)
        elif selection.org_id is not None:
            history = log.read_all()  # the orgs of jobs requested before ``after``
        else:
            history = log.read_all(after=after)
    last = max([after, *(e.position for e in history[-1:])])
    admitted: list[RecordedEvent] = []
    for event in history:
        admitted += selector.feed(event)
        if until_ended:
            status = job_status.apply(status, event)
    yield from sorted((e for e in admitted if e.position > after), key=lambda e: e.position)
    if not follow or (status is not None and status.status in ENDED_STATUSES):
        return
    with Follower.open(path, after=last, stream=stream) as follower:
        for event in follower.events(stop=stop):
            for out in selector.feed(event):
                if out.position > after:
                    yield out
            if until_ended:
                status = job_status.apply(status, event)
                if status.status in ENDED_STATUSES:
                    return


def origins(path: Path, *, org_id: str | None = None) -> list[tuple[JobOrigin, JobStatus]]:
    """Who started each job (optionally only one org's), in request order, with its status."""
    with open_event_log(path) as log:
        history = log.read_all()
    if org_id is not None:
        history = select(history, Selection(org_id=org_id))
    statuses = job_status.project_jobs(history)
    return [(origin, statuses[origin.job_id]) for origin in job_origins(history)]


def job_audit(path: Path, job_id: str) -> tuple[JobOrigin, JobStatus, list[RecordedEvent]]:
    """One job: who started it, its status and its whole history.

    Raises:
        JobNotFoundError: the log has no ``job.requested`` for this id.
    """
    with open_event_log(path) as log:
        history = log.read_stream(job_stream(job_id))
    found = job_origins(history)
    if not found:
        raise JobNotFoundError(job_id)
    return found[0], job_status.project_jobs(history)[job_id], history


@dataclass(frozen=True)
class ChainCheck:
    """The hash chain's state: intact through ``verified_through`` (the head when it was checked)."""

    ok: bool
    checked: int  # events hashed by this check (the rest were verified by an earlier one)
    verified_through: int
    first_bad_position: int | None = None
    problem: str | None = None


class ChainChecker:
    """Verifies the chain once in full (the first call, e.g. after a server start), then only what
    was appended since, plus each event it is about to show (its content against its stored hash and
    its link to the one before): a page of the audit trail costs the new events, not the whole log
    (1M events take some 15 s to hash). A consistent rewrite of the verified part changes the hash
    stored at the last verified position, which sends the next check back to position 0; an edit of
    an event that is neither new nor shown is left to ``sfbackup verify``, which hashes everything."""

    def __init__(self) -> None:
        self._through: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def check(self, log: EventLog, shown: Sequence[int] = ()) -> ChainCheck:
        """Check the chain to the head and the events at positions ``shown``."""
        with self._lock:
            start = 0
            if self._through is not None and log.hash_at(self._through[0]) == self._through[1]:
                start = self._through[0]
            report = log.verify(after=start)
            if not report.ok:
                self._through = None
                return ChainCheck(False, report.checked, start, report.first_bad_position, report.problem)
            through = start + report.checked
            if through:
                digest = log.hash_at(through)
                self._through = None if digest is None else (through, digest)
            for first, last in _runs(p for p in shown if p <= start):
                again = log.verify(after=first - 1, until=last)
                if not again.ok:
                    self._through = None
                    return ChainCheck(False, report.checked, first - 1, again.first_bad_position, again.problem)
            return ChainCheck(True, report.checked, through)


def _runs(positions: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Consecutive stretches of sorted positions, as (first, last)."""
    run: list[int] = []
    for p in sorted(positions):
        if run and p != run[-1] + 1:
            yield run[0], run[-1]
            run = []
        run.append(p)
    if run:
        yield run[0], run[-1]


def events_page(
    log: EventLog, *, job_id: str | None = None, after: int = 0, limit: int = 50
) -> tuple[list[RecordedEvent], int | None]:
    """Events with position > ``after`` (of one job, or all), and the ``after`` of the next page (None: no more).

    Raises:
        JobNotFoundError: ``job_id`` has no events.
    """
    if job_id is None:
        events = log.read_all(after=after, limit=limit + 1)
    else:
        history = log.read_stream(job_stream(job_id))
        if not history:
            raise JobNotFoundError(job_id)
        events = [e for e in history if e.position > after][: limit + 1]
    more = len(events) > limit
    events = events[:limit]
    return events, (events[-1].position if more else None)
