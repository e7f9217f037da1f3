"""The /__fake__/ control API: fault rules, reset, log and state over HTTP, in-process and against
`sfbackup fake-org serve` in another process (with `sfbackup backup` in a third)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from plugin.fakeorg import FakeOrgServer

MINI = Path(__file__).parent / "orgs" / "mini"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def control(fake: FakeOrgServer, session: requests.Session) -> Iterator[Any]:
    fake.reset()

    def call(method: str, name: str, **kwargs: Any) -> requests.Response:
        return session.request(method, f"{fake.instance_url}/__fake__/{name}", **kwargs)

    yield call
    fake.reset()


def test_rules_are_added_listed_and_removed_over_http(fake: FakeOrgServer, sf: Salesforce, control: Any) -> None:
    added = control("POST", "faults", json=[
        {"id": "timeout", "action": "respond", "sobject": "Contact", "error_code": "QUERY_TIMEOUT"},
        {"action": "delay", "seconds": 0.01, "path": "/limits"},
    ])  # fmt: skip
    assert (added.status_code, added.json()) == (201, {"ids": ["timeout", "rule-1"]})
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FROM Contact")
    rules = control("GET", "faults").json()["rules"]
    assert [(r["id"], r["action"], r["matched"], r["fired"]) for r in rules] == [
        ("timeout", "respond", 1, 1),
        ("rule-1", "delay", 0, 0),
    ]
    assert control("DELETE", "faults/timeout").json() == {"removed": "timeout"}
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 4
    assert control("DELETE", "faults/timeout").status_code == 404
    assert control("DELETE", "faults").json() == {"removed": "all"} and fake.faults.rules() == []


def test_a_bad_rule_list_installs_nothing(fake: FakeOrgServer, control: Any) -> None:
    answer = control("POST", "faults", json=[{"action": "delay", "seconds": 1}, {"action": "delay"}])
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid fault rule (delay.seconds: Field required)"}
    assert fake.faults.rules() == []
    assert control("POST", "faults", data=b"{nope").json()["error"].startswith("the body is not JSON")
    assert control("GET", "nothing").status_code == 404


def test_log_pages_with_after_and_limit(fake: FakeOrgServer, sf: Salesforce, control: Any) -> None:
    for _ in range(3):
        sf.query("SELECT Id FROM Organization")
    first = control("GET", "log", params={"limit": 2}).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2] and first["last"] == 2
    rest = control("GET", "log", params={"after": first["last"]}).json()
    assert [e["seq"] for e in rest["entries"]] == [3]
    entry = rest["entries"][0]
    assert entry | {"method": "GET", "status": 200, "counted": True, "sobject": "Organization"} == entry
    assert control("GET", "log", params={"after": "x"}).status_code == 400


def test_state_agrees_with_limits_and_the_usage_header(fake: FakeOrgServer, sf: Salesforce, control: Any) -> None:
    sf.query("SELECT Id FROM Organization")
    limits = sf.limits()
    header = sf.api_usage["api-usage"]
    state = control("GET", "state").json()
    assert state["api_calls"] == 2 and state["requests"] == 2
    assert state["api_usage"] == {"used": header.used, "max": header.total, "remaining": header.total - header.used}
    assert limits["DailyApiRequests"]["Remaining"] == state["api_usage"]["remaining"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("no/such/thing")
    state = control("GET", "state").json()
    assert state["misses"] == ["GET /services/data/v62.0/no/such/thing"] and state["by_status"] == {"200": 2, "404": 1}


def test_reset_restores_the_start(fake: FakeOrgServer, sf: Salesforce, control: Any) -> None:
    control("POST", "faults", json={"action": "rate_limit", "after": 0})
    fake.expire_sessions()
    assert control("POST", "reset").json() == {"reset": True}
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1  # the start-up token is valid again
    state = control("GET", "state").json()
    assert state["api_calls"] == 1 and state["api_usage"]["used"] == 11 and fake.faults.rules() == []


def _serve(*extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "fake-org", "serve", "--org", str(MINI), "--page-size", "7", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


@pytest.mark.e2e
def test_rules_over_http_reach_a_backup_run_in_other_processes(tmp_path: Path) -> None:
    proc, info = _serve()
    try:
        with requests.Session() as http:
            http.verify, http.trust_env = info["ca_bundle"], False
            url = info["instance_url"] + "/__fake__/"
            rule = {"action": "expire_session", "path": "/query/01g", "nth": 1}
            assert http.post(url + "faults", json=rule, timeout=10).status_code == 201
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("SF_", "SFBACKUP_"))},
                "SFBACKUP_HOME": str(tmp_path),
                "SFBACKUP_CA_BUNDLE": info["ca_bundle"],
                "SF_LOGIN_URL": info["instance_url"],
                "SF_USERNAME": info["username"],
                "SF_PASSWORD": info["password"],
                "SF_SECURITY_TOKEN": info["security_token"],
            }
            done = subprocess.run(
                [sys.executable, "-m", "plugin.cli", "backup", "--json"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            job = json.loads(done.stdout)
            state = http.get(url + "state", timeout=10).json()
            log = http.get(url + "log", timeout=10).json()["entries"]
            rules = http.get(url + "faults", timeout=10).json()["rules"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert job["status"] == "completed" and job["records"] == 28
    manifest = json.loads((Path(job["backup_directory"]) / "manifest.json").read_text(encoding="utf-8"))
    # sfbackup looks the org id up once before the job (1 call); the worker's calls are in the manifest.
    assert manifest["api_calls"] == state["api_calls"] - 1
    assert state["logins"] == 3  # the look-up, the worker, and the worker again after the expiry
    assert [e["status"] for e in log if e["faults"]] == [401] and rules[0]["fired"] == 1
