"""``WorkerStarter``: starts new jobs' workers just after their answers leave, from one thread.

``job.requested`` and the slot's claim are committed before the answer, so the job exists either
way; what moves off the answer's path is the projections' fold of the request (``start_worker``)
and the process start (log file, ``Popen``'s Python code holding
the GIL for up to a switch interval, the reaper thread) and the new process's imports competing for
the CPU while the answer is written: the start waits ``SPAWN_AFTER`` (measured, a spawn beside the
answer added 2-4 ms to one call in three). One long-lived thread does this for every job, since
starting a thread per request cost about 0.2 ms of the answer (``Thread.start`` waits for it to run).

A worker that cannot be started fails its job (``spawn_worker`` records WORKER_START_FAILED); one
whose server dies first fails it after ``WORKER_START_SECONDS`` (WORKER_DID_NOT_START). ``close()``,
called when the plugin stops and at interpreter exit, starts what is still waiting without the
delay, so a server that is shutting down still starts every worker it promised.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

from plugin.jobs.runtime import BackupStart, JobRuntime

logger = logging.getLogger(__name__)

SPAWN_AFTER = 0.05  # seconds a new job's worker waits for the answer to leave (it takes about 1-10 ms)

_Start = tuple[float, JobRuntime, BackupStart]


class WorkerStarter:
    """A queue of worker starts, each due ``delay`` seconds after it was handed in."""

    def __init__(self, delay: float = SPAWN_AFTER) -> None:
        self._delay = delay
        self._queue: queue.SimpleQueue[_Start | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def submit(self, runtime: JobRuntime, start: BackupStart) -> None:
        """Start the job's worker soon, if it got a worker slot (a queued job waits for one)."""
        if start.attempt is None:
            return
        with self._lock:
            if self._closing.is_set():  # the plugin stopped: nobody will drain the queue again
                _start(runtime, start)
                return
            if self._thread is None:
                # A daemon, so a thread that waits for work never holds the interpreter's exit up;
                # close() makes sure nothing handed in is left behind: the plugin calls it when it
                # stops, and the interpreter at exit (a host that never entered plugin.running()).
                self._thread = threading.Thread(target=self._run, name="sfbackup-worker-starter", daemon=True)
                self._thread.start()
                atexit.register(self.close)
            self._queue.put((time.monotonic() + self._delay, runtime, start))

    def close(self) -> None:
        """Start every waiting worker now and stop the thread (a submit meanwhile starts at once);
        a later submit starts a new thread."""
        with self._lock:
            self._closing.set()
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()
            atexit.unregister(self.close)
        with self._lock:
            self._closing.clear()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            due, runtime, start = item
            self._closing.wait(due - time.monotonic())  # returns at once when closing
            _start(runtime, start)


def _start(runtime: JobRuntime, start: BackupStart) -> None:
    try:
        runtime.start_worker(start)
    except Exception:
        logger.exception("could not start the worker of job %s", start.job_id)
