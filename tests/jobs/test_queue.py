"""Several jobs at once: a cap on workers, a queue the runtime drains, one full backup per org, unique ids."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from plugin.jobs import leases
from plugin.jobs.runtime import JobRuntime
from tests.jobs.support import HOLD_CONTACT, ended, fake_org, held, history, options, runtime, wait_until

pytestmark = pytest.mark.e2e
SESSION = {"SF_INSTANCE_URL": "https://acme.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!token"}


def position_of(rt: JobRuntime, job: str, event_type: str) -> int:
    return next(e.position for e in history(rt, job) if e.type == event_type)


def test_a_queued_job_starts_when_the_running_one_ends_with_no_server_around(home: Path) -> None:
    with fake_org() as fake:
        rt = runtime(home, fake, SFBACKUP_MAX_WORKERS="1")
        first = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Custom__c"]))
        second = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Lead"]))
        assert (first.attempt, second.attempt) == (1, None)
        assert leases.get(rt.log, first.job.job_id) is not None
        assert leases.get(rt.log, second.job.job_id) is None
        rt.start_worker(first)
        rt.start_worker(second)  # queued: starts nothing
        wait_until(lambda: ended(rt, second.job.job_id), what="the queued job to run and end")
        assert rt.job(first.job.job_id).status == "completed"
        assert rt.job(second.job.job_id).status == "completed"
        # The first worker handed its slot on as it ended: the second started after it, not beside it.
        assert position_of(rt, second.job.job_id, "job.started") > position_of(rt, first.job.job_id, "job.completed")
        assert rt.child(second.job.job_id) is None  # this runtime never started it
        rt.close()


@pytest.mark.parametrize("round_before", [True, False], ids=["after-a-round", "first-round"])
def test_housekeeping_starts_queued_jobs_when_a_slot_frees(home: Path, round_before: bool) -> None:
    """Also in the very round that frees the slot, with no read of the projections before it: a request
    leaves its event unfolded (a queued job's, to the next read), and the round still finds it waiting."""
    with fake_org() as fake:
        rt = runtime(home, fake, SFBACKUP_MAX_WORKERS="1")
        stuck = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Custom__c"]))
        waiting = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Lead"]))
        assert stuck.attempt == 1 and waiting.attempt is None
        if round_before:
            assert rt.housekeeping() == {"reaped": [], "forced": [], "started": [], "cleaned": []}  # slot taken
        with rt.log.write_transaction() as tx:  # the claimed slot's worker never came
            tx.execute("UPDATE job_leases SET lease_until = 0 WHERE job_id = ?", (stuck.job.job_id,))
        done = rt.housekeeping()
        assert done["reaped"] == [stuck.job.job_id] and done["started"] == [waiting.job.job_id]
        wait_until(lambda: ended(rt, waiting.job.job_id), what="the queued job to end")
        assert rt.job(waiting.job.job_id).status == "completed"
        assert rt.job(stuck.job.job_id).status == "failed"
        rt.close()


def test_one_full_backup_per_org_a_second_request_returns_the_running_job(home: Path) -> None:
    with fake_org() as fake:
        hold = fake.add_fault(HOLD_CONTACT)
        rt = runtime(home, fake)
        first = rt.request_backup(options(home))
        rt.start_worker(first)
        again = rt.request_backup(options(home))
        assert again.already_running and again.attempt is None
        assert again.job.job_id == first.job.job_id
        assert len(rt.jobs()[0]) == 1  # nothing was recorded for the second request
        other_type = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Custom__c"]))
        assert not other_type.already_running  # only full backups are single-flight
        wait_until(lambda: held(fake, hold), what="the full backup to be busy")
        rt.cancel(first.job.job_id)
        wait_until(lambda: ended(rt, first.job.job_id), what="the full backup to stop")
        rt.start_worker(other_type)
        fresh = rt.request_backup(options(home))
        assert not fresh.already_running and fresh.job.job_id != first.job.job_id
        rt.start_worker(fresh)
        wait_until(lambda: ended(rt, fresh.job.job_id), what="the new full backup to end")
        assert rt.job(fresh.job.job_id).status == "completed"
        wait_until(lambda: ended(rt, other_type.job.job_id), what="the incremental backup to end")
        rt.close()


def test_racing_requests_get_unique_ids_and_never_more_slots_than_the_cap(home: Path) -> None:
    env = {**SESSION, "SFBACKUP_MAX_WORKERS": "2"}
    runtimes = [JobRuntime(home, env=env) for _ in range(4)]
    barrier = threading.Barrier(len(runtimes))
    starts: list[list[int | None]] = [[] for _ in runtimes]
    ids: list[list[str]] = [[] for _ in runtimes]

    def request(index: int) -> None:
        barrier.wait()
        for _ in range(25):
            start = runtimes[index].request_backup(options(home, backup_type="incremental"))
            starts[index].append(start.attempt)
            ids[index].append(start.job.job_id)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(runtimes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [j for chunk in ids for j in chunk]
    assert len(every) == len(set(every)) == 100
    assert sum(1 for chunk in starts for a in chunk if a is not None) == 2  # the cap held under the race
    assert len(leases.every(runtimes[0].log)) == 2
    assert runtimes[0].jobs(limit=200)[1] == 100
    for rt in runtimes:
        rt.close()


def test_workers_run_niced_so_the_server_keeps_the_cpu(home: Path) -> None:
    import os

    from plugin.jobs.settings import WORKER_NICENESS
    from tests.jobs.support import worker_pid

    with fake_org() as fake:
        hold = fake.add_fault(HOLD_CONTACT)
        rt = runtime(home, fake)
        job = rt.start_backup(options(home, backup_type="incremental", objects_filter=["Contact"]))
        pid = worker_pid(rt, job.job_id)
        wait_until(lambda: held(fake, hold), what="the worker to sit in its Contact query")
        niceness = os.getpriority(os.PRIO_PROCESS, pid)  # alive: held in that request for 60 s
        rt.cancel(job.job_id, reason="test over")
        wait_until(lambda: ended(rt, job.job_id), what="the cancelled job to end")
        rt.close()
    assert niceness == max(WORKER_NICENESS, os.getpriority(os.PRIO_PROCESS, 0))


def test_a_request_is_answered_without_a_sync_and_a_workers_outcome_is_synced(home: Path) -> None:
    """The request's commit skips the fsync (the answer comes at once); progress too; the outcome not."""
    from events import EventLog, NewEvent
    from plugin import config
    from plugin.jobs.procs import ProcessRef
    from tests.events.test_durability import _setting_at_each_commit

    statements: list[str] = []
    with fake_org() as fake, EventLog.open(config.events_path(home), tracer=statements.append) as shared:
        rt = JobRuntime(home, env=runtime(home, fake).env, log=shared)
        statements.clear()
        start = rt.request_backup(options(home, backup_type="incremental", objects_filter=["Lead"]))
        assert _setting_at_each_commit(statements) == ["NORMAL"]
        job = start.job.job_id
        with shared.write_transaction() as tx:
            assert leases.take(tx, job, 1, "w1", ProcessRef.me(), lease_seconds=60)
        statements.clear()
        for batch, version in (([NewEvent("job.progress", {"records": 1})], 1), ([NewEvent("job.failed", {})], 2)):
            leases.fenced_append(shared, job, 1, "w1", batch, expected_version=version)
        assert _setting_at_each_commit(statements) == ["NORMAL", "FULL"]
        rt.close()


def test_a_requests_answer_is_the_status_the_projections_hold(home: Path) -> None:
    """The request leaves its one event for the projections to fold later (off the answer's path); its
    answer is the status they then hold, folded from that event, not read."""
    from events import EventLog
    from plugin import config

    statements: list[str] = []
    with fake_org() as fake, EventLog.open(config.events_path(home), tracer=statements.append) as shared:
        rt = JobRuntime(home, env=runtime(home, fake).env, log=shared)
        for backup_type in ("incremental", "full"):
            statements.clear()
            start = rt.request_backup(options(home, backup_type=backup_type, objects_filter=["Lead"]))
            after_commit = statements[statements.index("COMMIT") + 1 :]
            assert after_commit == []  # no read of what it just wrote
            assert start.attempt == 1 and start.job.status == "requested" and start.job.version == 1
            assert not [s for s in statements if s.startswith(("INSERT INTO job_status", "INSERT INTO projection_"))]
            assert rt.catch_up() == 1  # the request's event, folded now
            assert start.job == rt.job(start.job.job_id)
        rt.close()


def test_the_worker_starter_folds_the_request_before_it_starts_the_worker(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a sync: the fold is derived (made again after a power cut), and an fsync would hold the
    log, and the next request, for its length."""
    from events import EventLog
    from plugin import config
    from plugin.mcp.starter import WorkerStarter
    from tests.events.test_durability import _setting_at_each_commit

    statements: list[str] = []
    with fake_org() as fake, EventLog.open(config.events_path(home), tracer=statements.append) as shared:
        rt = JobRuntime(home, env=runtime(home, fake).env, log=shared)
        started: list[tuple[str, int]] = []

        def spawn_worker(job_id: str, attempt: int = 1) -> None:
            assert rt.store.catch_up() == 0  # already folded, by the starter, before this
            started.append((job_id, attempt))

        monkeypatch.setattr(rt, "spawn_worker", spawn_worker)
        statements.clear()
        start = rt.request_backup(options(home, objects_filter=["Lead"]))
        starter = WorkerStarter(delay=0)
        starter.submit(rt, start)
        starter.close()
        assert started == [(start.job.job_id, 1)]
        assert _setting_at_each_commit(statements) == ["NORMAL", "NORMAL"]  # the request's, then the fold's
        assert any(s.startswith("INSERT INTO job_status") for s in statements)
        rt.close()


def test_backups_go_under_the_home_resolved_when_the_runtime_started(tmp_path: Path) -> None:
    """A home reached through a symlink is resolved once: a link repointed later is not followed (the
    worker's recheck would refuse a link put on the way of the recorded folder)."""
    first, second, link = tmp_path / "first", tmp_path / "second", tmp_path / "home"
    first.mkdir()
    second.mkdir()
    link.symlink_to(first)
    with fake_org() as fake:
        rt = runtime(link, fake)
        try:
            link.unlink()
            link.symlink_to(second)
            start = rt.request_backup(options(link, objects_filter=["Lead"]))
            assert Path(start.job.backup_directory or "").is_relative_to(first / "backups")
        finally:
            rt.close()
