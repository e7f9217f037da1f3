"""The worker starter: one thread starts new jobs' workers after the answer's delay, and none is lost at close."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

from plugin.jobs.runtime import BackupStart, JobRuntime
from plugin.mcp.starter import WorkerStarter
from projections import JobStatus


class Recorder:
    """Stands in for the runtime: records which jobs' workers were started, when, and on which thread."""

    def __init__(self, fail: str | None = None) -> None:
        self.started: list[tuple[str, float, str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def start_worker(self, start: BackupStart) -> None:
        if start.job.job_id == self.fail:
            raise OSError("no such file: python")
        with self.lock:
            self.started.append((start.job.job_id, time.monotonic(), threading.current_thread().name))

    def ids(self) -> list[str]:
        with self.lock:
            return [job for job, _, _ in self.started]


def _start(job_id: str, attempt: int | None = 1) -> BackupStart:
    return BackupStart.of(JobStatus(job_id=job_id), attempt)


def _wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the starter did not start the worker in time"
        time.sleep(0.005)


def test_workers_start_after_the_delay_in_order_from_one_thread() -> None:
    recorder = Recorder()
    starter = WorkerStarter(delay=0.05)
    handed = time.monotonic()
    for job in ("a", "b", "c"):
        starter.submit(cast(JobRuntime, recorder), _start(job))
    _wait_for(lambda: len(recorder.ids()) == 3)
    assert recorder.ids() == ["a", "b", "c"]
    assert all(at - handed >= 0.05 for _, at, _ in recorder.started)
    assert {thread for _, _, thread in recorder.started} == {"sfbackup-worker-starter"}
    starter.submit(cast(JobRuntime, recorder), _start("d"))  # the same thread serves later requests
    _wait_for(lambda: len(recorder.ids()) == 4)
    assert {thread for _, _, thread in recorder.started} == {"sfbackup-worker-starter"}
    starter.close()


def test_a_queued_job_gets_no_worker() -> None:
    recorder = Recorder()
    starter = WorkerStarter(delay=0)
    starter.submit(cast(JobRuntime, recorder), _start("queued", attempt=None))
    starter.submit(cast(JobRuntime, recorder), _start("slot"))
    _wait_for(lambda: recorder.ids() == ["slot"])
    starter.close()
    assert recorder.ids() == ["slot"]


def test_close_starts_every_waiting_worker_at_once() -> None:
    recorder = Recorder()
    starter = WorkerStarter(delay=60)  # far beyond the test: only close can start them
    for job in ("a", "b"):
        starter.submit(cast(JobRuntime, recorder), _start(job))
    closing = time.monotonic()
    starter.close()
    assert recorder.ids() == ["a", "b"]
    assert all(at - closing < 10 for _, at, _ in recorder.started)


def test_a_failed_start_is_logged_and_the_next_ones_still_start(caplog: Any) -> None:
    recorder = Recorder(fail="broken")
    starter = WorkerStarter(delay=0)
    for job in ("broken", "fine"):
        starter.submit(cast(JobRuntime, recorder), _start(job))
    _wait_for(lambda: recorder.ids() == ["fine"])
    starter.close()
    assert "could not start the worker of job broken" in caplog.text


def test_after_close_a_submit_starts_a_new_thread() -> None:
    recorder = Recorder()
    starter = WorkerStarter(delay=0)
    starter.close()  # closing a starter that never ran is harmless
    starter.submit(cast(JobRuntime, recorder), _start("later"))
    _wait_for(lambda: recorder.ids() == ["later"])
    starter.close()


def test_a_process_that_exits_without_closing_still_starts_what_it_promised(tmp_path: Any) -> None:
    """A host that never entered plugin.running(): the interpreter's exit drains the starter."""
    import subprocess
    import sys

    marker = tmp_path / "started"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from plugin.jobs.runtime import BackupStart
from plugin.mcp.starter import WorkerStarter
from projections import JobStatus

class Runtime:
    def start_worker(self, start):
        Path({str(marker)!r}).write_text(start.job.job_id)

WorkerStarter(delay=60).submit(Runtime(), BackupStart.of(JobStatus(job_id="promised"), 1))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert marker.read_text() == "promised"
