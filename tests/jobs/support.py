"""Real workers against a fake org of their own: helpers for the job-runtime tests."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from events import RecordedEvent
from events.ids import job_stream
from plugin.jobs import leases
from plugin.jobs.options import BackupOptions, validate_request
from plugin.jobs.runtime import JobRuntime
from tests.conftest import DEMO_ORG, sf_env

T = TypeVar("T")
# Small jobs: two objects of the demo org, over several query pages, no file bodies.
SMALL = {"objects_filter": ["Account", "Contact"], "include_files": False, "include_attachments": False}
# Contact's first query page is held back this long: the worker is busy in a network call meanwhile.
HOLD_CONTACT = {"action": "delay", "seconds": 60, "path": "/query", "sobject": "Contact", "times": 1}


@contextmanager
def fake_org() -> Iterator[Any]:
    """A fake org for one test: its fault rules cannot reach another test's workers."""
    from plugin.fakeorg import start_fake_org

    with start_fake_org(DEMO_ORG, page_size=250) as fake:
        yield fake


def runtime(home: Path, fake: Any, **env: str) -> JobRuntime:
    """A runtime whose workers reach ``fake``; cleanup after 0.1 s unless ``env`` says otherwise."""
    settings = {"SFBACKUP_CLEANUP_DELAY": "0.1", **env}
    return JobRuntime(home, env={**os.environ, **sf_env(fake), **settings})


def options(home: Path, **overrides: Any) -> BackupOptions:
    args: dict[str, Any] = {"backup_type": "full", **SMALL, **overrides}
    return validate_request(home=home, **args)


def wait_until(condition: Callable[[], T], *, what: str, timeout: float = 120) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def history(rt: JobRuntime, job_id: str) -> list[RecordedEvent]:
    return rt.log.read_stream(job_stream(job_id))


def types(rt: JobRuntime, job_id: str) -> list[str]:
    return [e.type for e in history(rt, job_id)]


def worker_pid(rt: JobRuntime, job_id: str) -> int:
    """The pid of the worker once it took its lease."""
    lease = wait_until(
        lambda: (lambda lease: lease if lease and lease.taken else None)(leases.get(rt.log, job_id)),
        what="the worker to take its lease",
    )
    assert lease.pid is not None
    return lease.pid


def held(fake: Any, rule_id: str) -> bool:
    """The hold rule fired: the worker sits in that request now."""
    return any(r["id"] == rule_id and r["fired"] for r in fake.faults.rules())


def progressed(rt: JobRuntime, job_id: str) -> bool:
    return "job.progress" in types(rt, job_id)


def ended(rt: JobRuntime, job_id: str) -> bool:
    """Completed, failed or cancelled (an interrupted job is waiting for its resume)."""
    return rt.job(job_id).status in ("completed", "failed", "cancelled")


def kill_quietly(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
