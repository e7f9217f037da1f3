"""Cleanup after the delay and the retention policy: folders go, each recorded once as job.cleaned,
the job's history and status stay."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events import EventLog
from events.codec import encode
from events.ids import job_stream, new_job_id
from events.vocabulary import EventPayload, JobCompleted, JobFailed, JobInterrupted, JobRequested, JobStarted
from plugin.jobs import cleanup, leases
from plugin.jobs.runtime import JobRuntime
from plugin.jobs.settings import RuntimeSettings
from projections import ProjectionStore

ORG_A, ORG_B = "00D000000000001AAA", "00D000000000002AAA"
ENV = {"SF_INSTANCE_URL": "https://acme.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000001!token"}


def stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def record(log: EventLog, job: str, payloads: list[EventPayload], *, days_ago: float = 0) -> None:
    events = [encode(p, occurred_at=stamp(days_ago)) for p in payloads]
    log.append(job_stream(job), events, expected_version=None)


def backup(
    home: Path, log: EventLog, org: str, *, days_ago: float, manifest_job: str | None = None
) -> tuple[str, Path]:
    """A completed backup of ``org`` with its folder and manifest on disk."""
    job = new_job_id()
    folder = home / "backups" / org / f"x-{job}"
    (folder / "data").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"job_id": manifest_job or job}), encoding="utf-8")
    (folder / "data" / "Account.csv").write_text("Id\r\n", encoding="utf-8")
    record(
        log,
        job,
        [
            JobRequested(job_id=job, org_id=org, backup_directory=str(folder)),
            JobStarted(attempt=1, org_id=org),
            JobCompleted(backup_directory=str(folder), records=1),
        ],
        days_ago=days_ago,
    )
    return job, folder


def ended_job(home: Path, log: EventLog, payload: EventPayload, *, days_ago: float = 0) -> tuple[str, Path]:
    job = new_job_id()
    folder = home / "backups" / ORG_A / f"x-{job}"
    partial = folder.with_name(folder.name + ".partial")
    (partial / "data").mkdir(parents=True)
    record(
        log,
        job,
        [JobRequested(job_id=job, org_id=ORG_A, backup_directory=str(folder)), JobStarted(attempt=1), payload],
        days_ago=days_ago,
    )
    return job, partial


def cleaned_events(log: EventLog, job: str) -> list[dict[str, object]]:
    return [e.data for e in log.read_stream(job_stream(job)) if e.type == "job.cleaned"]


def test_an_ended_job_is_cleaned_once_after_the_delay_and_stays_readable(home: Path) -> None:
    rt = JobRuntime(home, env={**ENV, "SFBACKUP_CLEANUP_DELAY": "3600"})
    failed, partial = ended_job(home, rt.log, JobFailed(error_code="X", message="boom"))
    interrupted, kept = ended_job(home, rt.log, JobInterrupted(reason="gone"), days_ago=10)
    with rt.log.write_transaction() as tx:
        leases.claim(tx, failed, 1, start_within=0)  # a lease left behind
    assert cleanup.cleanup_due(rt.log, rt.store, rt.settings, fresh=True) == []  # within the hour
    assert partial.is_dir()
    soon = RuntimeSettings(cleanup_delay=0)
    other = EventLog.open(home / "events.db")
    results: list[object] = []
    barrier = threading.Barrier(2)

    def clean(log: EventLog) -> None:
        barrier.wait()
        results.append(cleanup.cleanup_job(log, failed, soon))

    threads = [threading.Thread(target=clean, args=(log,)) for log in (rt.log, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sum(r is not None for r in results) == 1
    (data,) = cleaned_events(rt.log, failed)
    assert data["removed"] in ([str(partial), "lease of attempt 1"], ["lease of attempt 1"])
    assert "SFBACKUP_CLEANUP_DELAY" in str(data["reason"])
    assert not partial.exists() and not list(partial.parent.glob("*.deleting-*"))
    assert leases.get(rt.log, failed) is None
    status = rt.job(failed)
    assert (status.status, status.cleaned, status.error is not None) == ("failed", True, True)
    assert cleanup.cleanup_due(rt.log, rt.store, soon, fresh=True) == []  # once
    assert kept.is_dir() and cleaned_events(rt.log, interrupted) == []  # waits for a resume
    rt.close()


def test_retention_keeps_the_newest_backups_per_org(home: Path) -> None:
    rt = JobRuntime(home, env={**ENV, "SFBACKUP_KEEP_BACKUPS": "2"})
    foreign = backup(home, rt.log, ORG_A, days_ago=5, manifest_job="someone-else")  # the oldest of A
    a = [backup(home, rt.log, ORG_A, days_ago=d) for d in (4, 3, 2, 1)]  # in completion order
    b = [backup(home, rt.log, ORG_B, days_ago=9)]
    deleted = cleanup.apply_retention(rt.log, rt.store, rt.settings)
    assert sorted(deleted) == sorted([a[0][0], a[1][0]])
    for job, folder in a[:2]:
        assert not folder.exists()
        (data,) = cleaned_events(rt.log, job)
        assert data == {
            "removed": [str(folder)],
            "reason": f"retention: SFBACKUP_KEEP_BACKUPS=2 keeps the 2 newest backups of org {ORG_A}",
        }
        assert rt.job(job).status == "completed" and rt.job(job).cleaned
    for _, folder in [*a[2:], *b]:
        assert folder.is_dir()
    assert foreign[1].is_dir()  # its manifest names another job: not ours to delete
    entries, total = rt.backups(limit=20)
    assert total == 6 and {e.job_id for e in entries if e.cleaned} == {a[0][0], a[1][0]}
    assert cleanup.apply_retention(rt.log, rt.store, rt.settings) == []  # once
    rt.close()


def test_retention_by_age_never_deletes_the_newest_backup_of_an_org(home: Path) -> None:
    rt = JobRuntime(home, env={**ENV, "SFBACKUP_MAX_BACKUP_AGE_DAYS": "7"})
    old_a, new_a = backup(home, rt.log, ORG_A, days_ago=30), backup(home, rt.log, ORG_A, days_ago=1)
    only_b = backup(home, rt.log, ORG_B, days_ago=30)
    stale, stale_partial = ended_job(home, rt.log, JobInterrupted(reason="gone"), days_ago=8)
    deleted = cleanup.apply_retention(rt.log, rt.store, rt.settings)
    assert sorted(deleted) == sorted([old_a[0], stale])
    assert not old_a[1].exists() and new_a[1].is_dir() and only_b[1].is_dir()
    (data,) = cleaned_events(rt.log, old_a[0])
    assert "finished more than 7 days ago (SFBACKUP_MAX_BACKUP_AGE_DAYS)" in str(data["reason"])
    assert not stale_partial.exists()
    (data,) = cleaned_events(rt.log, stale)
    assert "interrupted more than 7 days ago and never resumed" in str(data["reason"])
    assert ProjectionStore(rt.log).job(old_a[0]) is not None  # history stays
    rt.close()


def test_without_a_policy_retention_deletes_nothing(home: Path) -> None:
    rt = JobRuntime(home, env=ENV)
    jobs = [backup(home, rt.log, ORG_A, days_ago=d) for d in (400, 300, 1)]
    assert cleanup.apply_retention(rt.log, rt.store, rt.settings) == []
    assert all(folder.is_dir() for _, folder in jobs)
    rt.close()


@pytest.mark.parametrize("kind", ["symlink", "missing"])
def test_remove_tree_leaves_what_is_not_a_real_folder(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "real"
    target.mkdir()
    path = tmp_path / "link"
    if kind == "symlink":
        path.symlink_to(target)
    assert cleanup.remove_tree(path) is False
    assert target.is_dir()
