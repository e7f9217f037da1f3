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
