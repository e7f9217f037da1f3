"""Options the worker checks against the org or the disk: objects_filter names, output_directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events import EventLog
from events.ids import job_stream
from plugin.jobs.options import validate_request
from plugin.jobs.runtime import JobRuntime
from plugin.jobs.worker import JobWorker

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"


@pytest.fixture(scope="module")
def mini() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(MINI) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _credentials(mini: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_INSTANCE_URL", mini.instance_url)
    monkeypatch.setenv("SF_ACCESS_TOKEN", mini.access_token)
    monkeypatch.setenv("SFBACKUP_CA_BUNDLE", str(mini.ca_bundle))


def request(home: Path, **options: Any) -> str:
    runtime = JobRuntime(home)
    try:
        return runtime.start_backup(validate_request(home=home, **options), spawn=False).job_id
    finally:
        runtime.close()


def work(home: Path, job_id: str) -> list[Any]:
    worker = JobWorker(home, job_id)
    try:
        worker.run()
    finally:
        worker.log.close()
    with EventLog.open(home / "events.db") as log:
        return log.read_stream(job_stream(job_id))


def test_objects_the_org_does_not_have_fail_the_job_with_close_matches(home: Path) -> None:
    events = work(home, request(home, backup_type="full", objects_filter=["Acount", "contact"]))
    failed = events[-1]
    assert failed.type == "job.failed" and failed.data["error_code"] == "INVALID_OBJECTS_FILTER"
    assert "Acount (did you mean Account?)" in failed.data["message"]
    assert "contact (did you mean Contact?)" in failed.data["message"]


def test_output_directory_receives_the_backup(home: Path) -> None:
    events = work(home, request(home, backup_type="full", objects_filter=["Contact"], output_directory="elsewhere"))
    assert events[-1].type == "job.completed"
    folder = Path(events[-1].data["backup_directory"])
    assert folder.parent.parent == (home / "elsewhere").resolve()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["options"]["output_directory"] == str((home / "elsewhere").resolve())
    assert not (home / "backups").exists()


def test_a_symlink_put_in_the_output_path_after_the_request_is_refused(home: Path, tmp_path: Path) -> None:
    job_id = request(home, backup_type="full", objects_filter=["Contact"], output_directory="out")
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "out").symlink_to(outside)  # between the request (which resolved the path) and the run
    events = work(home, job_id)
    assert events[-1].type == "job.failed"
    assert "symlink on the way was added after the request" in events[-1].data["message"]
    assert list(outside.iterdir()) == []


def test_a_workers_events_reach_the_projections_in_their_own_transactions(home: Path) -> None:
    """Readers (the MCP server's status calls) then find the projections current and never write."""
    from events.vocabulary import JobStarted

    job_id = request(home, backup_type="full", objects_filter=["Account"])
    worker = JobWorker(home, job_id)
    try:
        assert worker._take_lease()
        worker._append(JobStarted(attempt=1, objects_total=1, objects=("Account",)))
        head = worker.log.head()[0]
        checkpoints = worker.log.query("SELECT DISTINCT position FROM projection_checkpoints")
        row = worker.log.query("SELECT status, objects_total FROM job_status WHERE job_id = ?", (job_id,))
    finally:
        worker.log.close()
    assert (head, checkpoints, row) == (2, [{"position": 2}], [{"status": "running", "objects_total": 1}])
