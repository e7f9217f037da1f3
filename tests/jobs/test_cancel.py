"""Cancel: job.cancel_requested, the worker stops by itself (or by force after the grace), job.cancelled
exactly once, the partial folder cleaned; ended jobs refuse it."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from plugin.errors import JobStateError
from plugin.jobs import leases, recovery
from plugin.jobs.settings import RuntimeSettings
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import ExportStoppedError
from plugin.salesforce.export import Exporter
from plugin.salesforce.options import ExportOptions
from tests.jobs.support import (
    HOLD_CONTACT,
    ended,
    fake_org,
    held,
    history,
    options,
    runtime,
    types,
    wait_until,
    worker_pid,
)

pytestmark = pytest.mark.e2e


def _run_until_stopped(client: OrgClient, options: ExportOptions, tmp_path: Path, should_stop: Any) -> None:
    """An export into tmp_path/backup that ``should_stop`` ends: it raises ExportStoppedError; the client is closed."""
    exporter = Exporter(
        client,
        client.identity(),
        options,
        tmp_path / "backup",
        on_plan=lambda selection: None,
        on_progress=lambda progress: None,
        log_head=lambda: (0, "00" * 32),
        should_stop=should_stop,
    )
    try:
        with pytest.raises(ExportStoppedError):
            exporter.run()
    finally:
        client.close()


def cleaned(rt: Any, job: str) -> bool:
    return "job.cleaned" in types(rt, job)


def test_a_busy_worker_stops_on_cancel_and_its_partial_folder_is_cleaned(home: Path) -> None:
    with fake_org() as fake:
        hold = fake.add_fault(HOLD_CONTACT)  # stuck in a network call: the keeper must stop it
        rt = runtime(home, fake)
        job = rt.start_backup(options(home)).job_id
        worker_pid(rt, job)
        wait_until(lambda: held(fake, hold), what="the worker to be busy in Contact's query")
        child = rt.child(job)
        assert child is not None
        partial = Path((rt.job(job).backup_directory or "") + ".partial")
        assert partial.is_dir()
        status = rt.cancel(job, reason="wrong org", actor="cli")
        assert status.cancel_requested and status.status == "running"
        assert child.wait(timeout=60) == 0
        wait_until(lambda: cleaned(rt, job), what="the cleanup after the cancel")
        events = history(rt, job)
        assert [e.type for e in events][-3:] == ["job.cancel_requested", "job.cancelled", "job.cleaned"]
        asked, done, clean = events[-3:]
        assert asked.data == {"reason": "wrong org"} and asked.metadata["actor"] == "cli"
        assert done.data == {"forced": False} and done.metadata["actor"] == "worker"
        assert clean.data["removed"] == [str(partial)] and "SFBACKUP_CLEANUP_DELAY" in clean.data["reason"]
        assert not partial.exists()
        final = rt.job(job)
        assert (final.status, final.phase, final.cleaned) == ("cancelled", "cancelled", True)
        assert leases.get(rt.log, job) is None
        assert "cancelled while the export was busy" in (home / "logs" / f"{job}.log").read_text(encoding="utf-8")
        with pytest.raises(JobStateError, match=r"has already been cancelled .* nothing to cancel"):
            rt.cancel(job)
        assert types(rt, job).count("job.cancelled") == 1
        rt.close()


def test_the_export_stops_at_its_next_progress_report_when_asked(home: Path, tmp_path: Path) -> None:
    """The cooperative path: ``should_stop`` is asked per page of records and per file body; a stop
    mid-downloads drops the queued bodies instead of fetching them all."""
    from plugin.config import credentials_from_env
    from tests.conftest import sf_env

    with fake_org() as fake:
        client = OrgClient(credentials_from_env(sf_env(fake)), api_version="62.0", extra_ca=Path(fake.ca_bundle))
        asked = {"n": 0}

        def bodies() -> list[Any]:
            return [e for e in fake.request_log if "/Attachment/" in e.path and e.path.endswith("/Body")]

        def should_stop() -> bool:
            asked["n"] += 1
            return len(bodies()) >= 3

        _run_until_stopped(
            client,
            ExportOptions(job_id="j1", objects_filter=("Attachment",), parallel_downloads=1),
            tmp_path,
            should_stop,
        )
        assert 3 <= len(bodies()) < 40  # the demo org has 40 Attachment bodies
        assert (tmp_path / "backup.partial").is_dir() and not (tmp_path / "backup").exists()
        assert asked["n"] >= len(bodies())  # asked on every body, not once per object


def test_cancelling_a_finished_job_is_a_clear_error_and_records_nothing(home: Path) -> None:
    with fake_org() as fake:
        rt = runtime(home, fake)
        job = rt.start_backup(options(home, objects_filter=["Custom__c"])).job_id
        wait_until(lambda: ended(rt, job), what="the job to end")
        before = types(rt, job)
        with pytest.raises(JobStateError) as refused:
            rt.cancel(job)
        assert str(refused.value).startswith(f"Job {job} has already completed (at ")
        assert "there is nothing to cancel" in str(refused.value)
        assert types(rt, job) == before
        rt.close()


def test_a_queued_job_is_cancelled_at_once(home: Path) -> None:
    with fake_org() as fake:
        hold = fake.add_fault(HOLD_CONTACT)
        rt = runtime(home, fake, SFBACKUP_MAX_WORKERS="1")
        running = rt.request_backup(options(home))
        rt.start_worker(running)
        queued = rt.request_backup(options(home, backup_type="incremental"))
        assert running.attempt == 1 and queued.attempt is None  # the only slot is taken
        wait_until(lambda: held(fake, hold), what="the first job to be busy")
        status = rt.cancel(queued.job.job_id)
        assert status.status == "cancelled"
        assert types(rt, queued.job.job_id) == ["job.requested", "job.cancel_requested", "job.cancelled"]
        assert rt.start_queued() == []  # nothing left to start
        rt.cancel(running.job.job_id)
        wait_until(lambda: ended(rt, running.job.job_id), what="the running job to stop")
        assert rt.job(running.job.job_id).status == "cancelled"
        rt.close()


def test_a_worker_that_ignores_the_cancel_is_killed_and_cancelled_once_by_racing_enforcers(home: Path) -> None:
    with fake_org() as fake:
        # Stopped while it waits on the network, not inside a write transaction: a worker stopped holding
        # the log's write lock would keep every writer out, the cancel too (the test failed so under load).
        hold = fake.add_fault(HOLD_CONTACT)
        rt = runtime(home, fake, SFBACKUP_CANCEL_GRACE="0")
        other = runtime(home, fake, SFBACKUP_CANCEL_GRACE="0")
        job = rt.start_backup(options(home)).job_id
        pid = worker_pid(rt, job)
        child = rt.child(job)
        assert child is not None
        wait_until(lambda: held(fake, hold), what="the worker to wait in Contact's query")
        try:
            os.kill(pid, signal.SIGSTOP)  # it can neither stop by itself nor heartbeat
            rt.cancel(job)
            results: list[list[str]] = []
            barrier = threading.Barrier(2)

            def enforce(runtime: Any) -> None:
                barrier.wait()
                results.append(recovery.enforce_cancels(runtime))

            threads = [threading.Thread(target=enforce, args=(r,)) for r in (rt, other)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # A fatal signal kills a stopped process too (Linux), so it is SIGTERM's doing, or SIGKILL's.
            assert child.wait(timeout=60) in (-signal.SIGTERM, -signal.SIGKILL)
            # The two enforcers and the spawner's child watcher all race to record it: one of them does.
            assert sum(len(r) for r in results) <= 1
            events = history(rt, job)
            cancelled = [e for e in events if e.type == "job.cancelled"]
            assert [e.data for e in cancelled] == [{"forced": True}]
            assert cancelled[0].metadata["actor"] == "reaper"
            assert rt.job(job).status == "cancelled"
            assert recovery.reap(rt) == [] and recovery.enforce_cancels(other) == []
            rt.close()
            other.close()
        finally:  # a stopped worker is never left behind, whatever failed above (not reaped: still ours)
            if child.poll() is None:
                child.kill()


def test_settings_are_checked_with_messages_naming_the_variable() -> None:
    from plugin.errors import ConfigError

    defaults = RuntimeSettings.from_env({})
    assert (defaults.max_workers, defaults.lease_seconds, defaults.cleanup_delay) == (4, 30.0, 5.0)
    assert defaults.heartbeat_seconds == 5.0 and defaults.keep_backups is None
    tuned = RuntimeSettings.from_env({"SFBACKUP_MAX_WORKERS": "2", "SFBACKUP_KEEP_BACKUPS": "3"})
    assert (tuned.max_workers, tuned.keep_backups) == (2, 3)
    for env, message in [
        ({"SFBACKUP_MAX_WORKERS": "0"}, "SFBACKUP_MAX_WORKERS='0' is not a whole number >= 1"),
        ({"SFBACKUP_MAX_WORKERS": "2.5"}, "SFBACKUP_MAX_WORKERS='2.5' is not a whole number"),
        ({"SFBACKUP_CLEANUP_DELAY": "soon"}, "SFBACKUP_CLEANUP_DELAY='soon' is not seconds >= 0"),
        ({"SFBACKUP_LEASE_SECONDS": "nan"}, "SFBACKUP_LEASE_SECONDS='nan' is not seconds >= 0.5"),
        ({"SFBACKUP_MAX_BACKUP_AGE_DAYS": "0"}, "would delete every backup"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RuntimeSettings.from_env(env)


def test_a_job_failed_retryably_can_be_cancelled_instead_of_resumed_and_its_partial_folder_goes(home: Path) -> None:
    with fake_org() as fake:
        rt = runtime(home, fake)
        fake.add_fault({"action": "rate_limit", "after": 8})
        job = rt.start_backup(options(home)).job_id
        wait_until(lambda: ended(rt, job), what="the limited job to fail")
        failed = rt.job(job)
        assert failed.status == "failed" and failed.error is not None and failed.error.retryable
        partial = Path((failed.backup_directory or "") + ".partial")
        assert partial.is_dir()
        cancelled = rt.cancel(job, reason="not needed after all")
        assert cancelled.status == "cancelled"
        assert types(rt, job)[-2:] == ["job.cancel_requested", "job.cancelled"]
        wait_until(lambda: cleaned(rt, job) and not partial.exists(), what="the cleanup of the partial folder")
        with pytest.raises(JobStateError, match="has already been cancelled"):
            rt.cancel(job)
        rt.close()


def test_a_stop_in_the_middle_of_an_object_ends_the_export_and_leaves_its_csv(tmp_path: Path) -> None:
    """A stop is not an object that failed: nothing is discarded (a newer attempt may be writing the
    same file) and no further object is exported."""
    from plugin.config import credentials_from_env
    from plugin.fakeorg import start_fake_org
    from tests.conftest import DEMO_ORG, sf_env

    with start_fake_org(DEMO_ORG, page_size=50) as fake:
        client = OrgClient(credentials_from_env(sf_env(fake)), api_version="62.0", extra_ca=Path(fake.ca_bundle))

        def should_stop() -> bool:  # once a second page (a nextRecordsUrl locator) has arrived: inside Account
            return any(e.path.rstrip("/").split("/")[-1].startswith("01g") for e in fake.request_log)

        _run_until_stopped(
            client,
            ExportOptions(job_id="j1", objects_filter=("Account", "Contact"), include_files=False),
            tmp_path,
            should_stop,
        )
        # Contact's describe came with Account's, in the Composite request before the first object.
        asked_contact = [e for e in fake.request_log if e.sobject == "Contact" and not e.composite]
    csv_file = tmp_path / "backup.partial" / "data" / "Account.csv"
    assert csv_file.is_file() and csv_file.read_bytes().startswith(b'"Id",')
    assert asked_contact == []
