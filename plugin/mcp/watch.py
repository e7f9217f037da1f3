"""The server's eye on the log: every event any process appends becomes a resource-updated
notification (both eras), a log message for clients that set a level, and wakes the tool calls
that wait on that job.

One ``Follower`` per server, on its own connection, polled from worker threads (``aevents``), so the
event loop never blocks on SQLite. Waiting tools register before they read the job, so an event
landing between their read and their wait still wakes them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from events import Follower, RecordedEvent
from events.ids import job_id_of
from plugin.mcp.resources import JOBS_URI
from plugin.mcp.results import job_uri

logger = logging.getLogger(__name__)
POLL_WITHOUT_WATCH = 0.5  # seconds between reads when no watch runs (a host that skipped running())
# PRAGMA data_version polls: notifications within ~50 ms, at a fifth of the follower's default cost
# (it runs for as long as the server does, beside the tool calls whose latency counts).
WATCH_INTERVAL = 0.05


class JobWatch:
    def __init__(
        self,
        publish: Callable[[str], Awaitable[None]],
        *,
        on_event: Callable[[RecordedEvent], Awaitable[None]] | None = None,
    ) -> None:
        self._publish = publish
        self._on_event = on_event
        self._waiters: dict[str, set[anyio.Event]] = {}
        self._runs = 0  # one per lifespan: in-process test clients each enter one

    @property
    def running(self) -> bool:
        return self._runs > 0

    async def run(self, path: Path, *, after: int) -> None:
        """Follow the log from position ``after`` until cancelled."""
        follower = await anyio.to_thread.run_sync(partial(Follower.open, path, after=after, interval=WATCH_INTERVAL))
        self._runs += 1
        try:
            async for event in follower.aevents():
                job_id = job_id_of(event.stream_id)
                if job_id is None:
                    continue
                for waiter in self._waiters.pop(job_id, set()):
                    waiter.set()
                await self._publish(job_uri(job_id))
                await self._publish(JOBS_URI)
                if self._on_event is not None:
                    await self._on_event(event)
        finally:
            self._runs -= 1
            follower.close()  # not awaited: a cancelled task cannot await, and closing is quick

    def register(self, job_id: str) -> anyio.Event:
        """An event that is set at the job's next event (register first, then read the job)."""
        waiter = anyio.Event()
        self._waiters.setdefault(job_id, set()).add(waiter)
        return waiter

    async def wait(self, job_id: str, waiter: anyio.Event, seconds: float) -> None:
        """Until the job's next event, or ``seconds``; without a running watch, a plain pause."""
        try:
            with anyio.move_on_after(seconds if self.running else min(seconds, POLL_WITHOUT_WATCH)):
                await waiter.wait()
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[job_id]
