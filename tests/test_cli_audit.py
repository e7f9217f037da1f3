"""`sfbackup events` filters and --follow, and `sfbackup audit`: who started each job, and its history."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from events import EventLog, NewEvent
from events.codec import encode
from events.ids import job_stream
from events.vocabulary import JobCompleted, JobProgress, JobStarted
from plugin.cli import cli
from plugin.salesforce.identity import org_id_from_token

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0
TOKEN = "00D000000000042!secret"
ORG = org_id_from_token(TOKEN) or ""
OTHER_ORG = "00D000000000777AAA"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


@pytest.fixture
def jobs(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two jobs requested the way the CLI and the MCP tool do (no worker), one of another org."""
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("USER", "ada")
    runtime = JobRuntime(home)
    try:
        cli_job = runtime.start_backup(validate_request(home=home), actor="cli", tool="sfbackup backup", spawn=False)
        mcp_job = runtime.start_backup(  # incremental: a second full one of the org would be the first job
            validate_request(home=home, backup_type="incremental"),
            actor="mcp",
            correlation_id="mcp:run1:7",
            spawn=False,
        )
        started = encode(JobStarted(worker_id="ada-laptop:99:1", pid=99, org_id=ORG), correlation_id="mcp:run1:7")
        runtime.log.append(job_stream(mcp_job.job_id), [started], expected_version=1)
        other = NewEvent("job.requested", {"job_id": "other1", "org_id": OTHER_ORG}, metadata={"actor": "test"})
        runtime.log.append(job_stream("other1"), [other], expected_version=0)
    finally:
        runtime.close()
    return {"cli": cli_job.job_id, "mcp": mcp_job.job_id, "other": "other1"}


def test_events_filter_by_org_correlation_and_type(jobs: dict[str, str]) -> None:
    everything = json_lines(invoke("events", "--json"))
    assert [e["position"] for e in everything] == [1, 2, 3, 4]
    by_org = json_lines(invoke("events", "--org", ORG, "--json"))
    assert [e["position"] for e in by_org] == [1, 2, 3]
    assert [e["position"] for e in json_lines(invoke("events", "--org", OTHER_ORG, "--json"))] == [4]
    by_request = json_lines(invoke("events", "--correlation", "mcp:run1:7", "--json"))
    assert [(e["type"], e["stream"]) for e in by_request] == [
        ("job.requested", job_stream(jobs["mcp"])),
        ("job.started", job_stream(jobs["mcp"])),
    ]
    started = json_lines(invoke("events", "--type", "job.started", "--json"))
    assert [e["position"] for e in started] == [3]
    both = json_lines(invoke("events", "--org", ORG, "--type", "job.requested", "--after", "1", "--json"))
    assert [e["position"] for e in both] == [2]
    assert invoke("events", "--job", jobs["mcp"]).count("\n") == 2


def test_events_json_lines_carry_the_stored_fields(jobs: dict[str, str]) -> None:
    first = json_lines(invoke("events", "--json", "--limit", "1"))[0]
    assert sorted(first) == sorted(
        [
            "position",
            "event_id",
            "type",
            "stream",
            "version",
            "schema_version",
            "data",
            "metadata",
            "correlation_id",
            "causation_id",
            "time",
            "hash",
        ]
    )
    assert len(first["hash"]) == 64


def test_unknown_type_and_misused_until_done_are_usage_errors(home: Path) -> None:
    result = CliRunner().invoke(cli, ["events", "--type", "job.exploded"])
    assert result.exit_code == 2 and "job.exploded" in result.output
    result = CliRunner().invoke(cli, ["events", "--until-done", "--job", "x"])
    assert result.exit_code == 2 and "--until-done needs --follow and --job JOB" in result.output


def test_audit_shows_who_started_each_job(jobs: dict[str, str]) -> None:
    rows = json.loads(invoke("audit", "--json"))["jobs"]
    assert [r["job_id"] for r in rows] == [jobs["cli"], jobs["mcp"], "other1"]
    cli_row, mcp_row, _ = rows
    assert (cli_row["actor"], cli_row["tool"], cli_row["user"], cli_row["status"]) == (
        "cli",
        "sfbackup backup",
        "ada",
        "requested",
    )
    assert cli_row["host"] and cli_row["pid"] and cli_row["auth"] == "session"
    assert (mcp_row["actor"], mcp_row["tool"], mcp_row["correlation_id"]) == ("mcp", "salesforce_backup", "mcp:run1:7")
    assert (mcp_row["worker_id"], mcp_row["worker_pid"], mcp_row["status"]) == ("ada-laptop:99:1", 99, "running")
    assert [r["job_id"] for r in json.loads(invoke("audit", "--org", OTHER_ORG, "--json"))["jobs"]] == ["other1"]
    text = invoke("audit")
    assert f"started by cli (sfbackup backup) as ada@{cli_row['host']}, pid {cli_row['pid']}" in text
    assert "MCP request mcp:run1:7" in text and "run by worker ada-laptop:99:1" in text


def test_audit_of_one_job_gives_its_origin_and_history(jobs: dict[str, str]) -> None:
    one = json.loads(invoke("audit", jobs["mcp"], "--json"))
    assert one["job"]["job_id"] == jobs["mcp"] and one["job"]["status"] == "running"
    assert [e["type"] for e in one["events"]] == ["job.requested", "job.started"]
    assert one["events"] == json_lines(invoke("events", "--job", jobs["mcp"], "--json"))
    text = invoke("audit", jobs["mcp"])
    assert "started by mcp (salesforce_backup)" in text and "job.started" in text


def test_audit_of_an_unknown_job_says_how_to_list_jobs(home: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "nope"])
    assert result.exit_code == 1
    assert "No job with id 'nope'" in result.output
    assert invoke("audit") == "No backup jobs yet.\n"


class Lines:
    """stdout of a subprocess, read in a thread so a test can wait with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line)
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def take(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            line = self._queue.get(timeout=DEADLINE)
            assert line is not None, "the follower exited early"
            out.append(json.loads(line))
        return out

    def at_end(self) -> bool:
        return self._queue.get(timeout=DEADLINE) is None


def start_follow(*args: str) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "events", "--follow", "--json", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    return proc, Lines(proc)


def test_events_follow_prints_live_events_and_ctrl_c_exits_0(jobs: dict[str, str], home: Path) -> None:
    proc, lines = start_follow("--after", "1")
    try:
        assert [e["position"] for e in lines.take(3)] == [2, 3, 4]
        with EventLog.open(home / "events.db") as log:
            stream = job_stream(jobs["mcp"])
            log.append(stream, [encode(JobProgress(records=10))], expected_version=2)
            log.append(stream, [encode(JobProgress(records=20))], expected_version=3)
        live = lines.take(2)
        assert [(e["position"], e["data"]["records"]) for e in live] == [(5, 10), (6, 20)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0
        assert lines.at_end()
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "Traceback" not in err


def test_events_follow_until_done_exits_when_the_job_ends(jobs: dict[str, str], home: Path) -> None:
    proc, lines = start_follow("--job", jobs["mcp"], "--until-done")
    try:
        assert [e["type"] for e in lines.take(2)] == ["job.requested", "job.started"]
        with EventLog.open(home / "events.db") as log:
            stream = job_stream(jobs["mcp"])
            log.append(job_stream(jobs["cli"]), [encode(JobProgress(records=1))], expected_version=1)
            log.append(stream, [encode(JobCompleted(backup_directory="/b", records=5))], expected_version=2)
        (done,) = lines.take(1)
        assert (done["type"], done["stream"]) == ("job.completed", stream)
        assert proc.wait(timeout=DEADLINE) == 0
        assert lines.at_end()
    finally:
        proc.kill()
        proc.communicate()
    # The job has ended: a new follow prints its history and exits without waiting.
    result = subprocess.run(
        [sys.executable, "-m", "plugin.cli", "events", "--follow", "--until-done", "--job", jobs["mcp"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0 and result.stdout.count("\n") == 3


def test_events_follow_stops_after_limit(jobs: dict[str, str], home: Path) -> None:
    proc, lines = start_follow("--after", "4", "--limit", "1")
    try:
        with EventLog.open(home / "events.db") as log:
            log.append(job_stream(jobs["cli"]), [encode(JobProgress(records=3))], expected_version=1)
        assert [e["position"] for e in lines.take(1)] == [5]
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_the_audit_user_comes_from_the_environment_first_and_the_account_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """getpass.getuser's order: LOGNAME, USER, LNAME, USERNAME, then the account database, which is
    read once per process (an NSS look-up was a tenth of a request)."""
    from plugin.jobs import runtime

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    looked_up: list[str] = []

    def getuser() -> str:
        looked_up.append("x")
        return "from-passwd"

    monkeypatch.setattr("getpass.getuser", getuser)
    runtime._account_name.cache_clear()
    try:
        assert [runtime._os_user(), runtime._os_user()] == ["from-passwd", "from-passwd"]
        assert looked_up == ["x"]
        monkeypatch.setenv("USERNAME", "grace")
        assert runtime._os_user() == "grace"
        monkeypatch.setenv("LOGNAME", "ada")
        assert runtime._os_user() == "ada"
    finally:
        runtime._account_name.cache_clear()
