"""Lost workers (SIGKILL, SIGSTOP past the lease, never started): exactly one event each, fencing, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from plugin.jobs import leases, recovery
from plugin.jobs.runtime import JobRuntime
from plugin.jobs.worker import EXIT_FENCED
from tests.jobs.support import (
    HOLD_CONTACT,
    ended,
    fake_org,
    held,
    history,
    options,
    progressed,
    runtime,
    types,
    wait_until,
    worker_pid,
)

pytestmark = pytest.mark.e2e


def race(*calls: Any) -> list[Any]:
    """Run the calls at once in threads (a barrier lines them up); return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_killed_worker_is_interrupted_exactly_once_by_racing_reapers_and_resumes(home: Path) -> None:
    with fake_org() as fake:
        hold = fake.add_fault(HOLD_CONTACT)  # attempt 1 hangs in Contact's first page
        spawner = runtime(home, fake)
        job = spawner.start_backup(options(home)).job_id
        pid = worker_pid(spawner, job)
        wait_until(lambda: held(fake, hold), what="the worker to be busy in Contact's query")
        child = spawner.child(job)
        assert child is not None
        spawner.close()  # the spawner notices its child's exit too: out of the way, so the reapers race
        os.kill(pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
        first, second = runtime(home, fake), runtime(home, fake)
        settled = race(lambda: recovery.reap(first), lambda: recovery.reap(second))
        assert sorted(settled, key=len) == [[], [job]]
        assert types(first, job).count("job.interrupted") == 1
        interrupted = history(first, job)[-1]
        assert interrupted.type == "job.interrupted"
        assert interrupted.data["attempt"] == 1
        assert (
            f"process {pid}" in interrupted.data["reason"]
            and "ended without a terminal event" in interrupted.data["reason"]
        )
        assert interrupted.metadata["actor"] == "reaper"
        assert first.job(job).status == "interrupted"
        assert leases.get(first.log, job) is None
        assert recovery.reap(first) == [] and recovery.reap(second) == []  # nothing left to find

        resumed = first.resume(job)
        assert resumed.status == "interrupted"  # until attempt 2 records job.started
        wait_until(lambda: ended(first, job), what="attempt 2 to end")
        final = first.job(job)
        events = history(first, job)
        assert final.status == "completed", events[-1].data
        assert final.attempt == 2 and final.records == 1800
        started = [e for e in events if e.type == "job.started"]
        assert [e.data["attempt"] for e in started] == [1, 2]
        after = events[events.index(started[1]) :]
        assert {e.metadata["attempt"] for e in after if e.metadata.get("actor") == "worker"} == {2}
        assert Path(final.backup_directory or "", "manifest.json").is_file()
        second.close()
        first.close()


def test_a_worker_stopped_past_its_lease_is_fenced_and_attempt_2_owns_the_job(home: Path) -> None:
    with fake_org() as fake:
        # Stopped while it waits for Salesforce, not at a random moment: a process stopped inside a
        # write transaction would hold SQLite's lock, and every other writer would time out.
        hold = fake.add_fault({"action": "delay", "seconds": 30, "path": "/query", "sobject": "Contact", "times": 1})
        rt = runtime(home, fake, SFBACKUP_LEASE_SECONDS="2")
        job = rt.start_backup(options(home)).job_id
        pid = worker_pid(rt, job)
        wait_until(lambda: progressed(rt, job) and held(fake, hold), what="the worker to wait in a query")
        old = rt.child(job)
        assert old is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: recovery.reap(rt) == [job], what="the lease of the stopped worker to run out")
            interrupted = history(rt, job)[-1]
            assert interrupted.type == "job.interrupted" and "stopped renewing its lease" in interrupted.data["reason"]
            rt.resume(job)
            wait_until(
                lambda: any(e.type == "job.started" and e.data["attempt"] == 2 for e in history(rt, job)),
                what="attempt 2 to start",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        assert old.wait(timeout=60) == EXIT_FENCED  # it woke up, found its lease gone and left
        wait_until(lambda: ended(rt, job), what="attempt 2 to end")
        events = history(rt, job)
        assert rt.job(job).status == "completed", events[-1].data
        start_2 = next(i for i, e in enumerate(events) if e.type == "job.started" and e.data["attempt"] == 2)
        assert [e for e in events[start_2:] if e.metadata.get("attempt") == 1] == []
        assert types(rt, job).count("job.interrupted") == 1
        log_text = (home / "logs" / f"{job}.log").read_text(encoding="utf-8")
        assert "lease" in log_text and "fenced" in log_text
        rt.close()


def test_a_worker_that_cannot_be_spawned_fails_its_job_at_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_org() as fake:
        rt = runtime(home, fake)

        def no_processes(*args: Any, **kwargs: Any) -> Any:
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(subprocess, "Popen", no_processes)
        job = rt.start_backup(options(home))
        status = rt.job(job.job_id)
        assert status.status == "failed" and status.error is not None
        assert status.error.code == "WORKER_START_FAILED"
        assert "Too many open files" in status.error.message and "start the backup again" in status.error.message
        assert leases.get(rt.log, job.job_id) is None  # the slot is free again
        assert types(rt, job.job_id) == ["job.requested", "job.failed"]
        rt.close()


def test_a_claimed_slot_nobody_takes_fails_the_job_once_after_the_deadline(home: Path) -> None:
    with fake_org() as fake:
        first, second = runtime(home, fake), runtime(home, fake)
        job = first.start_backup(options(home), spawn=False).job_id  # claimed, but no worker started
        lease = leases.get(first.log, job)
        assert lease is not None and not lease.taken
        assert recovery.reap(first) == []  # within its start deadline
        with first.log.write_transaction() as tx:
            tx.execute("UPDATE job_leases SET lease_until = 0 WHERE job_id = ?", (job,))
        settled = race(lambda: recovery.reap(first), lambda: recovery.reap(second))
        assert sorted(settled, key=len) == [[], [job]]
        assert types(first, job) == ["job.requested", "job.failed"]
        error = first.job(job).error
        assert error is not None and error.code == "WORKER_DID_NOT_START"
        assert "no worker process took attempt 1" in error.message
        first.close()
        second.close()


def test_the_fence_refuses_a_stale_attempts_append_atomically(home: Path) -> None:
    from events.codec import encode
    from events.vocabulary import JobProgress
    from plugin.errors import LeaseLostError
    from plugin.jobs.procs import ProcessRef

    rt = JobRuntime(
        home, env={"SF_INSTANCE_URL": "https://x.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!x"}
    )
    job = rt.start_backup(options(home), spawn=False).job_id
    with rt.log.write_transaction() as tx:
        assert leases.take(tx, job, 1, "w1", ProcessRef.me(), lease_seconds=30)
        leases.release(tx, job)
        leases.claim(tx, job, 2, start_within=30)  # attempt 2 took over
    event = encode(JobProgress(records=1))
    with pytest.raises(LeaseLostError, match=r"attempt 1 .* no longer holds the lease, attempt 2"):
        leases.fenced_append(rt.log, job, 1, "w1", [event], expected_version=None)
    assert types(rt, job) == ["job.requested"]
    with rt.log.write_transaction() as tx:
        assert leases.take(tx, job, 2, "w2", ProcessRef.me(), lease_seconds=30)
        assert not leases.take(tx, job, 2, "w3", ProcessRef.me(), lease_seconds=30)  # taken once
    leases.fenced_append(rt.log, job, 2, "w2", [event], expected_version=None, release_lease=True)
    assert types(rt, job) == ["job.requested", "job.progress"]
    assert leases.get(rt.log, job) is None
    rt.close()


def test_a_pid_reused_by_another_process_is_not_taken_for_the_worker() -> None:
    from plugin.jobs.procs import HOST, ProcessRef

    me = ProcessRef.me()
    assert me.alive() is True
    assert ProcessRef(HOST, me.pid, "1").alive() is False  # same pid, another start time
    assert ProcessRef("elsewhere", me.pid, me.token).alive() is None  # only its lease can tell
    assert ProcessRef(HOST, me.pid, "1").signal(signal.SIGTERM) is False  # never signalled
