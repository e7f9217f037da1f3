"""The command line: each command parses, calls the library and renders the same data as the tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin.cli import cli

STREAMS = Path(__file__).resolve().parents[1] / "fixtures" / "streams"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def requested_job(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    monkeypatch.setenv("SF_INSTANCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00D000000000042!secret")
    runtime = JobRuntime(home)
    job = runtime.start_backup(validate_request(home=home), actor="test", spawn=False)
    runtime.close()
    return job.job_id


def test_status_list_and_events_on_an_empty_home_say_so(home: Path) -> None:
    assert "No backup jobs yet" in invoke("status")
    assert json.loads(invoke("status", "--json")) == {"total": 0, "jobs": []}
    assert json.loads(invoke("list", "--json")) == {"total": 0, "backups": []}
    assert invoke("events") == ""


def test_status_and_events_show_a_requested_job(requested_job: str) -> None:
    one = json.loads(invoke("status", requested_job, "--json"))
    assert one["status"] == "requested" and one["job_id"] == requested_job
    lines = invoke("events", "--json").splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["job.requested"]
    assert json.loads(lines[0])["metadata"]["actor"] == "test"
    assert "secret" not in "\n".join(lines)


def test_status_of_unknown_job_fails_with_the_reason(home: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "nope"])
    assert result.exit_code == 1
    assert "No job with id 'nope'" in result.output


def test_verify_passes_on_an_intact_log(requested_job: str) -> None:
    report = json.loads(invoke("verify", "--json"))
    assert report["ok"] is True and report["checked"] == 1 and report["head"]["position"] == 1


def test_rebuild_gives_identical_tables(requested_job: str, home: Path) -> None:
    from events import EventLog
    from projections import ProjectionStore

    with EventLog.open(home / "events.db") as log:
        before = ProjectionStore(log).dump()
    assert json.loads(invoke("rebuild", "--json"))["rebuilt"] is True
    with EventLog.open(home / "events.db") as log:
        assert ProjectionStore(log).dump() == before


@pytest.mark.parametrize("stream", sorted(STREAMS.glob("*.jsonl")), ids=lambda p: p.stem)
def test_replay_prints_the_golden_projection(stream: Path) -> None:
    expected = stream.with_name(stream.stem + ".expected.json").read_text(encoding="utf-8")
    assert invoke("replay", str(stream)) == expected


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    names = [n for n in cli.commands if n]
    assert {"serve", "demo", "backup", "status", "list", "events", "verify", "rebuild", "replay", "fake-org"} <= set(
        names
    )
    for name in names:
        assert f"sfbackup {name}" in readme, name
        assert invoke(name, "--help")


def test_backup_command_runs_a_job_to_completion(fake_org: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import sf_env

    for key, value in sf_env(fake_org).items():
        monkeypatch.setenv(key, value)
    out = json.loads(invoke("backup", "--type", "full", "--object", "Custom__c", "--json"))
    assert out["status"] == "completed"
    assert out["records"] == 300 and out["objects_total"] == 1
    listed = json.loads(invoke("list", "--json"))
    assert listed["total"] == 1 and listed["backups"][0]["job_id"] == out["job_id"]


def row_of(table: str, key: str) -> list[str]:
    """The cells of the table row that contains ``key`` (rich draws cells between '│')."""
    line = next(line for line in table.splitlines() if key in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_backup_status_and_list_print_tables_with_the_jobs_values(
    fake_org: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import sf_env

    for key, value in sf_env(fake_org).items():
        monkeypatch.setenv(key, value)
    shown = invoke("backup", "--type", "full", "--object", "Custom__c", "--no-files")
    job = json.loads(invoke("status", "--json"))["jobs"][0]
    assert job["status"] == "completed"
    assert row_of(shown, "Status") == ["Status", "completed"]
    assert row_of(shown, "Records") == ["Records", "300"]
    assert row_of(shown, "Folder") == ["Folder", job["backup_directory"]]

    listing = invoke("status")
    assert "Backup jobs, newest first (1-1 of 1)" in listing
    assert row_of(listing, job["job_id"]) == [
        job["job_id"],
        "completed",
        "100",
        "full",
        "1/1",
        "300",
        "0",
        "0 B",
        job["requested_at"][:19].replace("T", " "),
    ]
    one = invoke("status", job["job_id"])
    assert row_of(one, "Objects") == ["Objects", "1/1 (skipped 0)"]
    assert row_of(one, "Org")[1].startswith(job["org_id"])

    backups = invoke("list")
    entry = json.loads(invoke("list", "--json"))["backups"][0]
    assert row_of(backups, job["job_id"]) == [
        entry["finished_at"][:19].replace("T", " "),
        entry["org_id"],
        "full",
        "1",
        "300",
        "0",
        "0 B",
        job["job_id"],
        job["backup_directory"],
    ]


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")])
def test_sizes_are_shown_in_binary_units(n: int, text: str) -> None:
    from plugin.tables import human_bytes

    assert human_bytes(n) == text


def test_serve_refuses_a_port_without_http() -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "9000"])
    assert result.exit_code == 1
    assert "--port only applies with --http" in result.output


def test_root_help_keeps_the_quick_start_one_command_a_line() -> None:
    out = invoke("--help")
    assert "    sfbackup demo                 back up the bundled fake org through a real MCP client\n" in out
    assert "    sfbackup verify               audit the event log" in out
