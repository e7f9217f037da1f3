"""A worker killed (SIGKILL) after five objects is resumed (``JobRuntime.resume``): attempt 2 fetches only the
missing objects and the backup is identical, CSV by CSV and checksum by checksum, to an
uninterrupted backup of the same org."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events import EventLog
from events.ids import job_stream
from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.jobs.options import BackupOptions
from plugin.jobs.runtime import JobRuntime
from plugin.jobs.worker import main as worker_main
from tests.conftest import DEMO_ORG, sf_env
from tests.jobs.support import held

pytestmark = pytest.mark.e2e
# The objects before ContentVersion, whose first query hangs: the worker is killed while it waits there.
# ContentVersion's first query rides along in the composite request of Attachment's turn (its first
# page with those of the next small objects: firstpages.py), so the kill comes while Attachment is under way.
DONE_BEFORE = ["Account"]


@pytest.fixture(scope="module")
def demo() -> Iterator[FakeOrgServer]:
    with start_fake_org(DEMO_ORG, page_size=250) as fake:
        yield fake


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stream(home: Path, job_id: str) -> list[Any]:
    with EventLog.open(home / "events.db") as log:
        return log.read_stream(job_stream(job_id))


def ended(home: Path, job_id: str) -> Any:
    events = stream(home, job_id)
    return events if events[-1].type in ("job.completed", "job.failed") else None


def digests(directory: Path) -> dict[str, str]:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "manifest.json")
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_killed_worker_resumes_and_fetches_only_what_is_missing(
    demo: FakeOrgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo.reset()
    env = {**os.environ, **sf_env(demo), "SFBACKUP_BULK_THRESHOLD": "500"}  # Bulk for the bigger demo objects
    demo.app.bulk.polls_to_complete = 1

    # An uninterrupted backup of the org, for comparison.
    runtime = JobRuntime(tmp_path / "home", env=env)
    try:
        before = demo.api_calls
        whole = runtime.start_backup(BackupOptions())
        wait_for(lambda: ended(runtime.home, whole.job_id), "the uninterrupted backup")
        whole_calls = demo.api_calls - before
        assert stream(runtime.home, whole.job_id)[-1].type == "job.completed"

        # The same backup, killed while it waits in ContentVersion's first query (REST or Bulk; the objects
        # before that request are done, and every describe came in the Composite request before the first object).
        job = runtime.start_backup(BackupOptions(), spawn=False)
        hold = {"action": "delay", "seconds": 120, "sobject": "ContentVersion", "path": "/(queryAll|jobs/query)/?$"}
        rule = demo.add_fault(hold)
        proc = runtime.spawn_worker(job.job_id)

        def finished() -> list[str]:
            events = stream(runtime.home, job.job_id)
            return [e.data["object_finished"]["object"] for e in events if (e.data or {}).get("object_finished")]

        wait_for(lambda: held(demo, rule), "the worker to wait in ContentVersion's first query")
        done = finished()
        os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: proc.poll() is not None, "the killed worker")
        assert done == DONE_BEFORE
        # The runtime saw its child exit with the lease still held: exactly one job.interrupted.
        wait_for(lambda: stream(runtime.home, job.job_id)[-1].type == "job.interrupted", "the interruption")
        demo.faults.remove(rule)

        mark, before = len(demo.request_log), demo.api_calls
        assert runtime.resume(job.job_id).status == "interrupted"  # until attempt 2 records job.started
        wait_for(lambda: ended(runtime.home, job.job_id), "the resumed backup")
        wait_for(lambda: runtime.child(job.job_id) is None, "the resumed worker's exit")
        resumed_calls = demo.api_calls - before
        log_after = demo.request_log[mark:]
        status = runtime.job(job.job_id)
        whole_dir = Path(runtime.job(whole.job_id).backup_directory or "")
    finally:
        runtime.close()

    events = stream(runtime.home, job.job_id)
    assert [e.type for e in events if e.type in ("job.started", "job.interrupted", "job.completed")] == [
        "job.started",
        "job.interrupted",
        "job.started",
        "job.completed",
    ]
    assert [e.data["attempt"] for e in events if e.type == "job.started"] == [1, 2]
    assert status.status == "completed" and status.attempt == 2
    resumed_dir = Path(status.backup_directory or "")
    assert digests(resumed_dir) == digests(whole_dir)  # every CSV, describe and file body
    whole_manifest = json.loads((whole_dir / "manifest.json").read_text(encoding="utf-8"))
    resumed_manifest = json.loads((resumed_dir / "manifest.json").read_text(encoding="utf-8"))
    for name, entry in whole_manifest["objects"].items():
        assert resumed_manifest["objects"][name].get("sha256") == entry.get("sha256"), name
        assert resumed_manifest["objects"][name].get("method") == entry.get("method"), name
    assert {n for n, e in whole_manifest["objects"].items() if e.get("method") == "bulk"} >= {"Contact"}
    # Only what was missing was fetched: no describe or query of a finished object ...
    # (The files step after the objects asks for ContentDocument Ids, for ContentDocumentLink: every attempt does.)
    links = "q=SELECT+Id+FROM+ContentDocument"
    asked = {
        e.sobject
        for e in log_after
        if ("/describe" in e.path or "q=" in e.query_string or e.path.endswith("/jobs/query"))
        and not e.query_string.startswith(links)
    }
    assert asked.isdisjoint(done) and "ContentVersion" in asked
    # ... and the API calls saved are exactly what those objects' records cost the first time (the
    # describes of both backups: one Composite request each, the resumed one without the five).
    calls = whole_manifest["api_calls_breakdown"], resumed_manifest["api_calls_breakdown"]
    assert calls[0]["describes"] == calls[1]["describes"] == 1
    assert resumed_calls == whole_calls - sum(whole_manifest["objects"][n]["api_calls"] for n in done)


def test_a_worker_without_a_claimed_lease_for_its_attempt_records_nothing(tmp_path: Path, demo: FakeOrgServer) -> None:
    env = {**os.environ, **sf_env(demo)}
    runtime = JobRuntime(tmp_path / "home", env=env)
    try:
        job = runtime.start_backup(BackupOptions(), spawn=False)  # attempt 1 claimed, never started
    finally:
        runtime.close()
    assert worker_main(["--home", str(tmp_path / "home"), "--attempt", "2", job.job_id]) == 3  # fenced
    assert [e.type for e in stream(tmp_path / "home", job.job_id)] == ["job.requested"]


def test_a_job_stopped_by_the_api_limit_keeps_its_partial_folder_and_resumes_after_it(
    demo: FakeOrgServer, tmp_path: Path
) -> None:
    """The API limit (requests left below the reserve) ends the attempt retryably; the cleanup keeps
    the ``.partial`` folder (no ``job.cleaned``) and a resume after the limit is lifted finishes the
    same backup."""
    demo.reset()
    env = {**os.environ, **sf_env(demo), "SFBACKUP_CLEANUP_DELAY": "0.1"}
    runtime = JobRuntime(tmp_path / "home", env=env)
    try:
        whole = runtime.start_backup(BackupOptions(include_files=False))
        wait_for(lambda: ended(runtime.home, whole.job_id), "the uninterrupted backup")
        demo.add_fault({"action": "rate_limit", "after": 12})
        job = runtime.start_backup(BackupOptions(include_files=False))
        events = wait_for(lambda: ended(runtime.home, job.job_id), "the limited backup")
        wait_for(lambda: runtime.child(job.job_id) is None, "the worker's exit after its cleanup delay")
        failed = runtime.job(job.job_id)
        assert events[-1].type == "job.failed" and failed.error is not None
        assert failed.error.code == "API_RESERVE_REACHED" and failed.error.retryable  # 0 left after the limit
        partial = Path((failed.backup_directory or "") + ".partial")
        assert partial.is_dir()
        assert runtime.housekeeping()["cleaned"] == []  # a server's cleanup keeps it too
        assert partial.is_dir() and not failed.cleaned
        demo.reset()  # the org's 24-hour window moved on: requests are left again

        runtime.resume(job.job_id)
        wait_for(lambda: runtime.job(job.job_id).status == "completed", "the resumed backup")
        status = runtime.job(job.job_id)
        whole_dir = Path(runtime.job(whole.job_id).backup_directory or "")
    finally:
        runtime.close()
    assert status.attempt == 2 and not partial.exists()
    assert digests(Path(status.backup_directory or "")) == digests(whole_dir)


BODY = r"/sobjects/\w+/\w+/(Body|VersionData)$"


def test_a_job_killed_while_downloading_keeps_the_bodies_it_has_and_fetches_only_the_rest(
    demo: FakeOrgServer, tmp_path: Path
) -> None:
    demo.reset()
    env = {**os.environ, **sf_env(demo)}
    runtime = JobRuntime(tmp_path / "home", env=env)
    options = BackupOptions(parallel_downloads=1)  # one body at a time: exactly 10 are done when the 11th hangs
    try:
        whole = runtime.start_backup(options)
        wait_for(lambda: ended(runtime.home, whole.job_id), "the uninterrupted backup")
        bodies = sum(1 for e in demo.request_log if re.search(BODY, e.path))

        job = runtime.start_backup(options, spawn=False)
        rule = demo.add_fault({"action": "delay", "seconds": 120, "path": BODY, "first": 11, "times": 1})
        proc = runtime.spawn_worker(job.job_id)
        assert proc is not None
        wait_for(lambda: held(demo, rule), "the 11th body of the second backup")
        os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: stream(runtime.home, job.job_id)[-1].type == "job.interrupted", "the interruption")
        demo.faults.remove(rule)
        # One kept body rots on disk (same size): its journal line no longer matches, so it is fetched again.
        partial = Path((runtime.job(job.job_id).backup_directory or "") + ".partial")
        kept = sorted(p for p in (partial / "files").rglob("*") if p.is_file() and p.suffix != ".part")
        assert len(kept) == 10
        rotten = bytearray(kept[0].read_bytes())
        rotten[0] ^= 0xFF
        kept[0].write_bytes(bytes(rotten))

        mark = len(demo.request_log)
        runtime.resume(job.job_id)
        wait_for(lambda: ended(runtime.home, job.job_id), "the resumed backup")
        asked_again = [e.path for e in demo.request_log[mark:] if re.search(BODY, e.path)]
        status = runtime.job(job.job_id)
        whole_dir = Path(runtime.job(whole.job_id).backup_directory or "")
    finally:
        runtime.close()
    assert status.status == "completed" and status.attempt == 2
    resumed_dir = Path(status.backup_directory or "")
    assert digests(resumed_dir) == digests(whole_dir)  # every CSV, describe, file body and the index
    manifest = json.loads((resumed_dir / "manifest.json").read_text(encoding="utf-8"))
    whole_files = json.loads((whole_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert manifest["files"]["count"] == whole_files["count"] > 10 and whole_files["reused"] == 0
    assert manifest["files"]["reused"] == 9
    assert len(asked_again) == bodies - 9  # nine good bodies on disk were checked, not downloaded again
