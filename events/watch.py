"""Hints that another process committed to the log: ``PRAGMA data_version`` polling or a ``-wal`` watch.

A hint only says "look again"; the follower always re-reads ``id > last``, so a missed, late or
false hint costs latency, never an event. Both sources follow the same protocol: ``arm()`` before
the first read, then ``wait()`` after each read that came back short.

- ``DataVersionHints`` polls ``PRAGMA data_version`` on the follower's own connection every
  ``interval`` seconds. It changes when any *other* connection commits; in WAL mode it reads the
  shared-memory header, so a poll costs microseconds and no disk I/O.
- ``WalWatchHints`` watches the database's folder (not recursively) for changes to ``<db>-wal``
  with watchfiles. inotify does not see ``-shm`` changes (SQLite writes it through mmap), so the
  ``-wal`` file is the one to watch; a folder watch also survives the WAL being deleted and
  recreated. Hints are confirmed with ``data_version`` (see the class), and if the watch cannot
  start (no inotify, watch limit reached) it falls back to polling.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Literal, Protocol

from events.log import EventLog

Notify = Literal["data_version", "watchfiles"]
NOTIFY_METHODS: tuple[Notify, ...] = ("data_version", "watchfiles")

log = logging.getLogger("sfbackup.events.watch")
_WAKE_MS = 100
_SLICE = 0.05
_CONFIRM_STEP = 0.001


class Hints(Protocol):
    """A source of "the log may have changed" hints."""

    def arm(self) -> None:
        """Start observing; everything committed after this returns is hinted."""

    def wait(self, timeout: float, stop: threading.Event | None) -> bool:
        """Block until a hint arrives (True), ``timeout`` seconds pass or ``stop`` is set (False)."""

    def close(self) -> None:
        """Release what ``arm`` started; harmless to call twice."""


def _pause(seconds: float, stop: threading.Event | None) -> None:
    if stop is not None:
        stop.wait(seconds)
    else:
        time.sleep(seconds)


class DataVersionHints:
    """Poll ``PRAGMA data_version`` on the follower's connection every ``interval`` seconds."""

    def __init__(self, log: EventLog, *, interval: float = 0.01) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self._log = log
        self.interval = interval
        self._seen: int | None = None

    def arm(self) -> None:
        # Read before the first query: a commit after this read changes the value, one before it
        # is visible to the query.
        self._seen = self._log.data_version()

    def poll(self) -> bool:
        """One check: has another connection committed since the last check? (no waiting)"""
        current = self._log.data_version()
        changed = current != self._seen
        self._seen = current
        return changed

    def wait(self, timeout: float, stop: threading.Event | None) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.poll():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return False
            _pause(min(self.interval, remaining), stop)

    def close(self) -> None:
        self._seen = None


class WalWatchHints:
    """Watch ``<db>-wal`` with watchfiles in a background thread, confirmed by ``data_version``.

    A ``-wal`` write comes *before* its commit is visible (the fsync and the ``-shm`` index update
    follow it), so re-reading on the bare hint misses the commit whenever the fsync outlasts the
    debounce, and then waits for the next write. A hint is therefore confirmed by polling
    ``data_version`` every millisecond for up to ``settle`` seconds (so while commits come faster
    than that, the watch in effect polls every millisecond). ``data_version`` is also checked
    every ``rescan`` seconds while waiting: the bound for a commit whose fsync outlasted
    ``settle``, and the safety net for a watch gone quiet. If the watch cannot start or dies,
    polling at ``fallback_interval`` takes over.

    ``debounce``/``step`` are watchfiles' grouping settings in milliseconds: a change is reported
    once no further change came for ``step`` ms (at most ``debounce`` ms after the first). The
    library defaults (1600/50) add ~50 ms; 20/1 keeps it near 2 ms.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        debounce: int = 20,
        step: int = 1,
        settle: float = 0.05,
        rescan: float = 0.25,
        fallback_interval: float = 0.01,
    ) -> None:
        self._path = Path(log.path).resolve()
        self._wal = self._path.name + "-wal"
        self.debounce = debounce
        self.step = step
        self.settle = settle
        self.rescan = rescan
        self._dv = DataVersionHints(log, interval=fallback_interval)
        self._hint = threading.Event()
        self._armed = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        self.failure: BaseException | None = None

    @property
    def watching(self) -> bool:
        """True while the file watch runs; False once it failed and polling took over."""
        return self._thread is not None and self._thread.is_alive() and self.failure is None

    def arm(self) -> None:
        self._dv.arm()
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"watch-{self._wal}", daemon=True)
        self._thread.start()
        # The watch is established once watchfiles returned once (within _WAKE_MS); a commit
        # before that is still caught by the data_version check between waits.
        self._armed.wait(5.0)

    def _run(self) -> None:
        import watchfiles

        def is_wal(change: watchfiles.Change, path: str) -> bool:
            return Path(path).name == self._wal

        try:
            for changes in watchfiles.watch(
                self._path.parent,
                watch_filter=is_wal,
                debounce=self.debounce,
                step=self.step,
                stop_event=self._closing,
                rust_timeout=_WAKE_MS,  # the first wake-up tells ``arm`` the watch is live
                yield_on_timeout=True,
                recursive=False,
                raise_interrupt=False,
                # If watchfiles has to poll (WSL, network mounts), poll often rather than every 300 ms.
                poll_delay_ms=10,
            ):
                self._armed.set()
                if changes:
                    self._hint.set()
        except Exception as e:  # watchfiles raises OSError / RuntimeError subclasses
            self.failure = e
        finally:
            if self.failure is None and not self._closing.is_set():
                self.failure = RuntimeError("the watch ended unexpectedly")
            self._armed.set()
            self._hint.set()

    def wait(self, timeout: float, stop: threading.Event | None) -> bool:
        deadline = time.monotonic() + timeout
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.rescan
                if self._dv.poll():
                    return True
            if self.failure is not None:
                if not self._warned:
                    self._warned = True
                    log.warning("watching %s failed (%s); polling data_version instead", self._wal, self.failure)
                return self._dv.wait(max(0.0, deadline - now), stop)
            remaining = deadline - now
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return False
            # Slices: a threading.Event cannot wait on the hint and ``stop`` at once.
            if self._hint.wait(min(_SLICE, remaining)):
                self._hint.clear()
                self._confirm(min(deadline, time.monotonic() + self.settle), stop)
                return True

    def _confirm(self, until: float, stop: threading.Event | None) -> None:
        while time.monotonic() < until and not (stop is not None and stop.is_set()):
            if self._dv.poll():
                return
            _pause(_CONFIRM_STEP, stop)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._dv.close()


def make_hints(log: EventLog, notify: Notify, *, interval: float = 0.01) -> Hints:
    """The hint source for a method name (``interval`` is the polling period, also of the fallback)."""
    if notify == "data_version":
        return DataVersionHints(log, interval=interval)
    if notify == "watchfiles":
        return WalWatchHints(log, fallback_interval=interval)
    raise ValueError(f"unknown notification method {notify!r}; use one of {', '.join(NOTIFY_METHODS)}")
