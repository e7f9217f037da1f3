"""`sfbackup cancel`, `sfbackup resume`, and `sfbackup status` telling lost and cancelled jobs apart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from events.codec import encode
from events.ids import job_stream
from events.vocabulary import JobStarted
from plugin.cli import cli
from plugin.jobs import leases
from plugin.jobs.options import validate_request
from plugin.jobs.procs import HOST, ProcessRef, start_token
from plugin.jobs.runtime import JobRuntime

ENV = {"SF_INSTANCE_URL": "https://example.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!secret"}


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def rt(home: Path) -> JobRuntime:
    return JobRuntime(home, env={**ENV, "SFBACKUP_MAX_WORKERS": "1"})


def test_cancel_a_queued_job_then_again(rt: JobRuntime, home: Path) -> None:
    rt.request_backup(validate_request(home=home, backup_type="incremental"))  # takes the only slot
    queued = rt.request_backup(validate_request(home=home, backup_type="incremental")).job.job_id
    rt.close()
    assert run("cancel", queued, "--reason", "not today") == f"Job {queued} is cancelled.\n"
    again = run("cancel", queued, code=1)
    assert f"Job {queued} has already been cancelled" in again and "nothing to cancel" in again
    shown = json.loads(run("status", queued, "--json"))
    assert (shown["status"], shown["cancel_requested"]) == ("cancelled", True)
    events = [json.loads(line) for line in run("events", "--job", queued, "--json").splitlines()]
    assert [e["type"] for e in events] == ["job.requested", "job.cancel_requested", "job.cancelled"]
    assert events[1]["data"] == {"reason": "not today"} and events[1]["metadata"]["tool"] == "sfbackup cancel"


def test_cancel_and_resume_of_unknown_or_unsuitable_jobs_fail_saying_why(rt: JobRuntime, home: Path) -> None:
    job = rt.request_backup(validate_request(home=home)).job.job_id
    rt.close()
    assert "No job with id 'nope'" in run("cancel", "nope", code=1)
    refused = run("resume", job, code=1)
    assert (
        f"Job {job} is requested; only an interrupted job, or one that failed with a retryable error, can be resumed"
        in refused
    )


def test_status_records_a_lost_worker_and_shows_how_to_go_on(rt: JobRuntime, home: Path) -> None:
    job = rt.request_backup(validate_request(home=home)).job.job_id
    gone = subprocess.Popen(["sleep", "0"])
    token = start_token(gone.pid)
    gone.wait()
    with rt.log.write_transaction() as tx:  # a worker took the slot, then died without a word
        assert leases.take(tx, job, 1, "w1", ProcessRef(HOST, gone.pid, token), lease_seconds=30)
    rt.log.append(job_stream(job), [encode(JobStarted(attempt=1, worker_id="w1"))], expected_version=1)
    rt.close()
    table = run("status")
    assert "interrupted (attempt 1)" in table
    one = run("status", job)
    assert "sfbackup resume " + job in one and "was lost" in one
    assert json.loads(run("status", job, "--json"))["status"] == "interrupted"


def test_status_table_marks_a_pending_cancel(rt: JobRuntime, home: Path) -> None:
    job = rt.request_backup(validate_request(home=home)).job.job_id  # claimed: a worker is expected
    rt.log.append(job_stream(job), [encode(JobStarted(attempt=1))], expected_version=1)
    rt.cancel(job)
    rt.close()
    assert "running, cancelling" in run("status")
    assert "cancel requested: the worker stops at its next safe point" in run("status", job)
