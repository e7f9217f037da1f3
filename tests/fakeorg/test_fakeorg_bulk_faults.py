"""Fault rules, reset and accounting on Bulk API 2.0 query jobs, seen through unmodified
simple-salesforce 1.12.10 (its bulk2 client polls `GET /jobs/query/{id}` until JobComplete, raises
SalesforceOperationError("Job failure. Response content: <errorMessage or the job info>") on
Failed/Aborted and "Job timeout. Job status: ..." after DEFAULT_WAIT_TIMEOUT_SECONDS; it never
logs in again)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import _Bulk2Client
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

from plugin.fakeorg import FakeOrgServer, sf_id

MINI = Path(__file__).parent / "orgs" / "mini"
SOQL = "SELECT Id, Name FROM Account"
JOB_PATH = re.compile(r"/jobs/query/750\w+$")


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOrgServer) -> None:
    fake.reset()


def _rows(page: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(page, newline="")))[1:]


def _polls(fake: FakeOrgServer) -> list[int]:
    return [e.status for e in fake.request_log if e.method == "GET" and JOB_PATH.search(e.path)]


def test_failed_rule_fails_the_job_on_its_next_poll(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "bulk_state", "sobject": "Account", "state": "Failed"})
    with pytest.raises(SalesforceOperationError) as info:
        next(sf.bulk2.Account.query(SOQL, wait=0))
    assert str(info.value).startswith(
        "Job failure. Response content: UNKNOWN_EXCEPTION: An unexpected error occurred. Please include this ErrorId"
    )
    assert _polls(fake) == [200]  # the first poll already reports Failed (polls_to_complete is 2)
    [job] = sf.restful("jobs/query")["records"]
    assert (job["state"], job["numberRecordsProcessed"]) == ("Failed", 0)
    assert job["errorMessage"].startswith("UNKNOWN_EXCEPTION: An unexpected error occurred.")
    assert len(_rows(next(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0)))) == 4  # other objects run


def test_failed_rule_with_its_own_message(fake: FakeOrgServer, sf: Salesforce, tmp_path: Path) -> None:
    fake.add_fault({"action": "bulk_state", "sobject": "Account", "state": "Failed", "error_message": "Boom"})
    with pytest.raises(SalesforceOperationError, match=r"^Job failure\. Response content: Boom$"):
        sf.bulk2.Account.download(SOQL, str(tmp_path), wait=0)
    assert list(tmp_path.iterdir()) == []


def test_aborted_rule(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "bulk_state", "sobject": "Account", "state": "Aborted"})
    with pytest.raises(SalesforceOperationError) as info:
        next(sf.bulk2.Account.query(SOQL, wait=0))
    # An aborted job has no errorMessage: simple-salesforce puts the whole job info in the message.
    assert str(info.value).startswith("Job failure. Response content: OrderedDict(")
    assert "'Aborted'" in str(info.value) and "errorMessage" not in str(info.value)
    [job] = sf.restful("jobs/query")["records"]
    assert job["state"] == "Aborted" and "errorMessage" not in job


def test_in_progress_rule_never_completes(fake: FakeOrgServer, sf: Salesforce, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Bulk2Client, "DEFAULT_WAIT_TIMEOUT_SECONDS", 0.3)  # 24 h by default
    fake.add_fault({"action": "bulk_state", "sobject": "Account", "state": "InProgress"})
    with pytest.raises(SalesforceOperationError, match=r"^Job timeout\. Job status: InProgress$"):
        next(sf.bulk2.Account.query(SOQL, wait=0))
    client = sf.bulk2.Account._client
    [job] = sf.restful("jobs/query")["records"]
    assert [client.get_job(job["id"], True)["state"] for _ in range(3)] == ["InProgress"] * 3
    assert len(_polls(fake)) > fake.app.bulk.polls_to_complete  # it would have completed long ago
    assert client.abort_job(job["id"], True)["state"] == "Aborted"  # a stuck job can still be aborted
    assert client.get_job(job["id"], True)["state"] == "Aborted"  # and the rule does not revive it


def test_connection_dropped_mid_csv_page(fake: FakeOrgServer, sf: Salesforce, tmp_path: Path) -> None:
    fake.add_fault({"action": "drop", "path": "/jobs/query/.+/results", "query": "locator=", "after_bytes": 60})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sf.bulk2.Account.download(SOQL, str(tmp_path), max_records=8, wait=0)
    pages = sorted(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    first = pages[0].read_text(encoding="utf-8")
    assert first.startswith('"Id","Name"\n') and len(_rows(first)) == 8  # the page before the drop is whole
    drops = [e for e in fake.request_log if e.faults]
    assert [(e.query_string.split("&")[-1], e.status) for e in drops] == [("locator=OA", 200)]


def test_session_expired_between_pages_then_the_locator_resumes(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "expire_session", "path": "/jobs/query/.+/results", "query": "locator="})
    client = sf.bulk2.Account._client
    job = client.create_job("query", SOQL)
    client.wait_for_job(job["id"], True, wait=0)
    first = client.get_query_results(job["id"], "", 8)
    assert (first["locator"], first["number_of_records"]) == ("OA", 8)
    with pytest.raises(SalesforceExpiredSession):
        client.get_query_results(job["id"], first["locator"], 8)
    with fake.client_session() as session:  # the product logs in again and resumes from the locator
        again = Salesforce(
            username=fake.username,
            password=fake.password,
            security_token=fake.security_token,
            session=session,
            version="62.0",
        )
        fake.faults.clear()
        rest = again.bulk2.Account._client.get_query_results(job["id"], first["locator"], 50)
    assert rest["number_of_records"] == 11 and rest["locator"] == ""
    ids = [r[0] for r in _rows(first["records"]) + _rows(rest["records"])]
    assert len(set(ids)) == 19


def test_reset_clears_bulk_jobs(fake: FakeOrgServer, sf: Salesforce, session: requests.Session) -> None:
    client = sf.bulk2.Account._client
    done = client.create_job("query", SOQL)
    client.wait_for_job(done["id"], True, wait=0)
    assert len(sf.restful("jobs/query")["records"]) == 1
    assert session.post(f"{fake.instance_url}/__fake__/reset").json() == {"reset": True}
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(done["id"], True)
    assert sf.restful("jobs/query")["records"] == []
    assert client.create_job("query", SOQL)["id"] == sf_id("750", 1)  # numbering starts again


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[FakeOrgServer]:
    org = shutil.copytree(MINI, tmp_path / "org")
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    limits = {**settings["limits"], "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 2}}
    (org / "org.json").write_text(json.dumps({**settings, "limits": limits}), encoding="utf-8")
    with FakeOrgServer(org) as server:
        yield server


def test_bulk_calls_are_api_calls_and_jobs_use_the_daily_job_limit(limited: FakeOrgServer) -> None:
    with limited.client_session() as session:
        sf = Salesforce(instance_url=limited.instance_url, session_id=limited.access_token, session=session)
        pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", max_records=3, wait=0))
        assert [len(_rows(p)) for p in pages] == [3, 1]
        assert limited.api_calls == 5  # create, 2 polls, 2 result pages
        assert all(e.counted for e in limited.request_log)
        limits = sf.limits()  # call 6
        assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 4990 - 6}
        assert limits["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 1}
        sf.bulk2.Contact._client.create_job("query", "SELECT Id FROM Contact")
        assert sf.limits()["DailyBulkV2QueryJobs"]["Remaining"] == 0
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.bulk2.Contact._client.create_job("query", "SELECT Id FROM Contact")
        assert info.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"
        assert len(sf.restful("jobs/query")["records"]) == 2
        limited.reset()
        assert sf.limits()["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 2}
