"""``request_backup_now``: the request an MCP server makes on its event loop, which must never wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events import EventLog
from events.codec import encode
from events.ids import job_stream
from events.vocabulary import JobProgress
from plugin.jobs import leases
from plugin.jobs.runtime import QUICK_FOLD, JobRuntime
from tests.jobs.support import options

SESSION = {"SF_INSTANCE_URL": "https://acme.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!token"}
INCREMENTAL = {"backup_type": "incremental", "objects_filter": ["Account"]}


@pytest.fixture
def rt(home: Path) -> Iterator[JobRuntime]:
    runtime = JobRuntime(home, env=SESSION)
    yield runtime
    runtime.close()


def test_it_records_what_request_backup_records(rt: JobRuntime, home: Path) -> None:
    now = rt.request_backup_now(options(home, **INCREMENTAL), correlation_id="mcp:run:1")
    slow = rt.request_backup(options(home, **INCREMENTAL), correlation_id="mcp:run:2")
    assert now is not None
    assert (now.attempt, slow.attempt, now.already_running) == (1, 1, False)
    [quick_event] = rt.log.read_stream(job_stream(now.job.job_id))
    [slow_event] = rt.log.read_stream(job_stream(slow.job.job_id))
    assert quick_event.type == slow_event.type == "job.requested"
    assert quick_event.data.keys() == slow_event.data.keys()
    assert {k: v for k, v in quick_event.data.items() if k not in ("job_id", "backup_directory")} == {
        k: v for k, v in slow_event.data.items() if k not in ("job_id", "backup_directory")
    }
    assert quick_event.metadata == slow_event.metadata
    assert quick_event.correlation_id == "mcp:run:1"
    assert leases.get(rt.log, now.job.job_id) is not None
    # What it answers is what the projections hold once folded.
    rt.catch_up()
    assert rt.job(now.job.job_id) == now.job


def test_a_write_lock_held_elsewhere_gives_none_at_once_and_nothing_is_recorded(rt: JobRuntime, home: Path) -> None:
    # Its connection does not wait: a busy timeout of 0, where request_backup's waits 5 s.
    assert rt._quick is not None
    assert rt._quick._require_conn().execute("PRAGMA busy_timeout").fetchone()[0] == 0
    other = EventLog.open(rt.log.path)
    with other.write_transaction():
        assert rt.request_backup_now(options(home, **INCREMENTAL)) is None
    other.close()
    assert rt.log.read_all() == []
    assert rt.request_backup_now(options(home, **INCREMENTAL)) is not None  # the lock is free again


def test_another_thread_at_work_in_the_runtime_gives_none(rt: JobRuntime, home: Path) -> None:
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with rt._lock:
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(30)
    try:
        assert rt.request_backup_now(options(home, **INCREMENTAL)) is None
    finally:
        leave.set()
        holder.join()
    assert rt.log.read_all() == []


def test_an_org_id_to_learn_from_salesforce_gives_none_without_a_network_call(home: Path) -> None:
    # Username and password: the org id takes a login, which request_backup makes (and remembers).
    env = {"SF_USERNAME": "a@b.c", "SF_PASSWORD": "pw", "SF_LOGIN_URL": "https://127.0.0.1:9"}
    runtime = JobRuntime(home, env=env)
    try:
        assert runtime.request_backup_now(options(home, **INCREMENTAL)) is None
        runtime._org_ids[runtime._request_settings().credentials] = "00D000000000042EAA"  # as after that login
        start = runtime.request_backup_now(options(home, **INCREMENTAL))
        assert start is not None and start.job.org_id == "00D000000000042EAA"
    finally:
        runtime.close()


def test_a_full_backup_folds_a_few_pending_events_but_hands_many_over(rt: JobRuntime, home: Path) -> None:
    # Projections never folded (a new home) are built by a thread: that fold has no bound.
    assert rt.request_backup_now(options(home, backup_type="full")) is None
    rt.catch_up()
    first = rt.request_backup_now(options(home, backup_type="full"))
    assert first is not None and first.attempt == 1
    again = rt.request_backup_now(options(home, backup_type="full"))  # its request is pending, unfolded
    assert again is not None and again.already_running and again.job.job_id == first.job.job_id
    progress = [
        encode(JobProgress(objects_done=0, objects_total=1, records=i, percent=0)) for i in range(QUICK_FOLD + 1)
    ]
    rt.log.append(job_stream(first.job.job_id), progress, expected_version=None)  # what a worker appends
    before = len(rt.log.read_all())
    assert rt.request_backup_now(options(home, backup_type="full")) is None
    assert len(rt.log.read_all()) == before  # nothing recorded
    slow = rt.request_backup(options(home, backup_type="full"))  # the thread's call folds them all
    assert slow.already_running and slow.job.job_id == first.job.job_id


def test_a_full_claim_is_counted_and_taken_in_one_statement(rt: JobRuntime) -> None:
    with rt.log.write_transaction() as tx:
        assert leases.claim_if_free(tx, "a", 1, cap=2, start_within=60, now=1000.0)
        assert leases.claim_if_free(tx, "b", 1, cap=2, start_within=60, now=1000.0)
        assert not leases.claim_if_free(tx, "c", 1, cap=2, start_within=60, now=1000.0)
        assert leases.get(tx, "c") is None
        # A claim whose time to start ran out holds no slot.
        assert leases.claim_if_free(tx, "d", 1, cap=2, start_within=60, now=1061.0)
        assert leases.held(tx, 1061.0) == 1


def test_many_requests_on_the_event_loop_do_not_grow_the_wal_without_bound(home: Path) -> None:
    # Its connection never checkpoints; with every slot taken no worker commits, and incremental
    # requests fold nothing, so no other connection of this runtime commits either: the quick path
    # itself must hand a request over now and then, whose connection checkpoints at its commit.
    runtime = JobRuntime(home, env={**SESSION, "SFBACKUP_MAX_WORKERS": "1"})
    wal = Path(f"{runtime.log.path}-wal")
    quick = 0
    biggest = 0
    try:
        for _ in range(5000):  # as the MCP tool does: a thread's request_backup when the quick path says None
            start = runtime.request_backup_now(options(home, **INCREMENTAL))
            quick += start is not None
            if start is None:
                start = runtime.request_backup(options(home, **INCREMENTAL))
            biggest = max(biggest, wal.stat().st_size)
        assert len(runtime.log.read_all()) == 5000
    finally:
        runtime.close()
    # 19 KB of WAL a request: it reached 95 MiB, past the log's journal_size_limit (64 MiB).
    assert biggest < 16 * 1024 * 1024, f"the WAL grew to {biggest / 2**20:.1f} MiB"
    assert quick >= 4900  # handing over is the exception


def test_a_full_backup_hands_over_a_few_pending_events_too_big_to_fold_on_the_loop(rt: JobRuntime, home: Path) -> None:
    # QUICK_FOLD bounds the count of events, not their size: a request's objects_filter may hold 2,000
    # names, so 200 such requests pending made a full request fold 33 MB of JSON on the event loop
    # (115-150 ms measured; a request of its own is 2-3 ms).
    rt.catch_up()
    names = [f"Object{i:04d}_{'x' * 60}__c" for i in range(2000)]
    pending = [rt.request_backup_now(options(home, backup_type="incremental", objects_filter=names)) for _ in range(3)]
    assert all(start is not None for start in pending)
    before = len(rt.log.read_all())
    assert rt.request_backup_now(options(home, backup_type="full")) is None
    assert len(rt.log.read_all()) == before  # nothing recorded
    assert rt.log.query("SELECT position FROM projection_checkpoints") == [{"position": 0}, {"position": 0}]
    slow = rt.request_backup(options(home, backup_type="full"))  # the thread's call folds them all
    assert not slow.already_running and slow.attempt == 1
    assert rt.request_backup_now(options(home, backup_type="full")) is not None  # folded: back on the loop


def test_a_new_jobs_status_is_folded_only_when_asked_for(
    rt: JobRuntime, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer needs the id, status and folder, which the start holds; the fold of the one event
    (the full JobStatus) is made on first use, off the request's path, and is what the projections hold."""
    from plugin.jobs import runtime as runtime_module

    folds: list[str] = []
    fold = runtime_module.requested_status

    def counted(job_id: str, *args: Any) -> Any:
        folds.append(job_id)
        return fold(job_id, *args)

    monkeypatch.setattr(runtime_module, "requested_status", counted)
    start = rt.request_backup_now(options(home, **INCREMENTAL))
    assert start is not None and folds == []
    assert (start.status, start.attempt, start.already_running) == ("requested", 1, False)
    assert start.backup_directory is not None and start.backup_directory.endswith(f"-{start.job_id}")
    job = start.job
    assert folds == [start.job_id] and start.job is job  # made once
    assert (job.job_id, job.status, job.backup_directory) == (start.job_id, start.status, start.backup_directory)
    rt.catch_up()
    assert rt.job(start.job_id) == job
