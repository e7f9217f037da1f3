"""The worker's second thread: renews its lease and watches its stream for a cancel.

The watch is ``PRAGMA data_version`` on the worker's own connection, which changes only when another
connection commits (a cancel comes from another process): no second connection, so no second
open of the log (each runs a quick_check of the whole file), and a stream read only when someone
else wrote.

The export asks ``reason()`` on every progress report (per record, per file): a cancel or a lost lease
makes it stop there. ``reason()`` is also a self-fence by the worker's own clock: once a whole lease
period passed without a successful heartbeat (the process was stopped, the disk stalled), the lease
may have run out and another attempt may own the job, so the export stops before writing more,
without waiting to hear so from the database. ``on_stop`` runs in this thread when a cancel or a
fence is seen, so the worker can act even while the export is stuck in a network call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from events import EventLog, EventLogError
from events.ids import job_stream
from plugin.jobs import leases
from plugin.jobs.settings import RuntimeSettings

logger = logging.getLogger(__name__)

CANCEL = "cancel"
FENCED = "fenced"
# How often the worker looks for a cancel: well inside "stops within about a second", at a tenth of
# the Follower's default polling, since every running worker pays it.
WATCH_INTERVAL = 0.1


class LeaseKeeper:
    def __init__(
        self,
        log: EventLog,
        job_id: str,
        attempt: int,
        worker_id: str,
        settings: RuntimeSettings,
        *,
        after: int,
        on_stop: Callable[[str], None],
    ) -> None:
        self._log = log
        self._job_id = job_id
        self._attempt = attempt
        self._worker_id = worker_id
        self._settings = settings
        self._after = after
        self._on_stop = on_stop
        self._done = threading.Event()
        self._cancelled = threading.Event()
        self._fenced = threading.Event()
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def reason(self) -> str | None:
        """Why the export must stop now (``"cancel"``, ``"fenced"``), or None to go on."""
        if self._fenced.is_set():
            return FENCED
        if self._cancelled.is_set():
            return CANCEL
        if time.monotonic() - self._renewed > self._settings.lease_seconds:
            return FENCED
        return None

    def _run(self) -> None:
        next_beat = time.monotonic() + self._settings.heartbeat_seconds
        seen: int | None = None
        while not self._done.wait(WATCH_INTERVAL):
            try:
                version = self._log.data_version()
                if version != seen:
                    seen = version
                    self._look_for_cancel()
            except EventLogError as e:
                logger.warning("job %s: cannot look for a cancel, trying again: %s", self._job_id, e)
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self._settings.heartbeat_seconds

    def _look_for_cancel(self) -> None:
        for event in self._log.read_stream(job_stream(self._job_id), after=self._after):
            self._after = event.stream_version
            if event.type == "job.cancel_requested" and not self._cancelled.is_set():
                logger.info("job %s: cancel requested", self._job_id)
                self._cancelled.set()
                self._on_stop(CANCEL)

    def _beat(self) -> None:
        started = time.monotonic()
        try:
            with self._log.write_transaction(durable=False) as tx:  # a beat lost to a power cut is moot
                renewed = leases.renew(
                    tx, self._job_id, self._attempt, self._worker_id, lease_seconds=self._settings.lease_seconds
                )
        except EventLogError as e:
            logger.warning("job %s: heartbeat failed, trying again: %s", self._job_id, e)
            return
        if renewed:
            self._renewed = started
        elif not self._fenced.is_set():
            logger.warning("job %s: attempt %d lost its lease (fenced)", self._job_id, self._attempt)
            self._fenced.set()
            self._on_stop(FENCED)
