"""Telling a live worker process from a dead one, and stopping one, without trusting a bare pid.

Pids are reused. A lease records the worker's host, pid and a start token (on Linux the process's
start time from ``/proc/<pid>/stat``), so a pid that now belongs to another process is never taken
for the worker and never signalled. Where there is no ``/proc`` the token is None: liveness then
rests on the pid alone until the lease runs out, and only the process that spawned a worker signals it.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass

HOST = socket.gethostname()


def start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None  # field 22 overall: starttime


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] == "Z"


@dataclass(frozen=True)
class ProcessRef:
    """Which process a worker is: enough to find out whether it still runs, on the host it ran on."""

    host: str
    pid: int
    token: str | None

    @classmethod
    def me(cls) -> ProcessRef:
        return cls(HOST, os.getpid(), start_token(os.getpid()))

    def local(self) -> bool:
        return self.host == HOST

    def alive(self) -> bool | None:
        """True/False for a process on this host; None when it runs elsewhere (only its lease can tell)."""
        if not self.local():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, under another user: not ours, unless the token says so
        if _zombie(self.pid):
            return False  # exited, not yet reaped by its parent: as dead as a worker gets
        if self.token is not None:
            return start_token(self.pid) == self.token
        return True

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if this is still the very process (token checked); False if it is gone."""
        if self.token is None or not self.local() or self.alive() is not True:
            return False
        try:
            os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, grace: float) -> bool:
        """SIGTERM, then SIGKILL after ``grace`` seconds; True once the process is gone."""
        if not self.signal(signal.SIGTERM):
            return self.alive() is False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.alive() is not True:
                return True
            time.sleep(0.02)
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.alive() is not True:
                return True
            time.sleep(0.02)
        return False
