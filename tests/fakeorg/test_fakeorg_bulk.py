"""Bulk API 2.0 query jobs driven by unmodified simple-salesforce 1.12.10 (and raw requests for headers)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

from plugin.fakeorg import FakeOrgError, FakeOrgServer, sf_id, start_fake_org
from plugin.fakeorg.bulk import BulkJob
from plugin.fakeorg.generators import generated_id
from plugin.fakeorg.jsonlit import loads
from tests.fakeorg.genorg import generated_org

MINI = Path(__file__).parent / "orgs" / "mini"
HEADER = '"Id","Name","Parent.Name","IsDeleted","AnnualRevenue","CreatedDate","Description"'
ACCOUNT_SOQL = "SELECT Id, Name, Parent.Name, IsDeleted, AnnualRevenue, CreatedDate, Description FROM Account"


def mini_accounts() -> list[dict[str, Any]]:
    body = loads((MINI / "records" / "Account.json").read_bytes())
    return list(body["records"] if isinstance(body, dict) else body)


def rows_of(page: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(page, newline="")))


def call(fake: FakeOrgServer, session: requests.Session, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {fake.access_token}", "Content-Type": "application/json"}
    return session.request(method, f"{fake.instance_url}/services/data/v62.0/{path}", headers=headers, **kw)


@pytest.fixture
def hooks(fake: FakeOrgServer) -> Iterator[list[Callable[[BulkJob], None]]]:
    """The on_create seam of the shared server, emptied after the test."""
    yield fake.app.bulk.on_create
    fake.app.bulk.on_create.clear()


def test_query_pages_are_salesforce_csv(sf: Salesforce) -> None:
    pages = list(sf.bulk2.Account.query(ACCOUNT_SOQL, max_records=8, wait=0))
    assert [len(rows_of(p)) - 1 for p in pages] == [8, 8, 3]  # 19 live accounts
    assert all(p.startswith(HEADER + "\n") for p in pages)
    assert (
        '\n"001000000000003AAA","Account 03","Account 01","false","-0","2024-01-03T10:30:00.000Z","crlf\r\nline"\n'
        in (pages[0])
    )
    names = {r["Id"]: r for r in mini_accounts()}
    served = [row for page in pages for row in rows_of(page)[1:]]
    assert [r[0] for r in served] == [i for i, r in names.items() if not r["IsDeleted"]]
    for record_id, name, parent, deleted, revenue, created, description in served:
        stored = names[record_id]
        assert name == stored["Name"] and deleted == "false"
        assert parent == (names[stored["ParentId"]]["Name"] if stored.get("ParentId") else "")
        assert revenue == (str(stored["AnnualRevenue"]) if stored.get("AnnualRevenue") is not None else "")
        assert created == stored["CreatedDate"].replace("+0000", "Z") and description == (stored["Description"] or "")


def test_null_is_an_empty_quoted_value_and_booleans_are_words(sf: Salesforce) -> None:
    [page] = sf.bulk2.Contact.query("SELECT Id, Email, IsEmailBounced, MailingLatitude FROM Contact", wait=0)
    assert page == (
        '"Id","Email","IsEmailBounced","MailingLatitude"\n'
        '"003000000000001AAA","ada@example.com","false","51.5072"\n'
        '"003000000000002AAA","","true","1.50"\n'
        '"003000000000003AAA","","false","-0"\n'
        '"003000000000004AAA","","","1e5"\n'
    )


def test_query_all_includes_the_recycle_bin(sf: Salesforce) -> None:
    [page] = sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", wait=0)
    assert page == f'"Id","IsDeleted"\n"{sf_id("001", 13)}","true"\n'
    assert sum(len(rows_of(p)) - 1 for p in sf.bulk2.Account.query_all("SELECT Id FROM Account", wait=0)) == 20


def test_download_writes_one_file_per_page(sf: Salesforce, tmp_path: Path) -> None:
    results = sf.bulk2.Contact.download("SELECT Id, Description FROM Contact", str(tmp_path), max_records=3, wait=0)
    assert [(r["locator"], r["number_of_records"]) for r in results] == [("Mw", 3), ("", 1)]  # "Mw" = base64("3")
    first = Path(results[0]["file"]).read_bytes().decode("utf-8")
    assert first.startswith('"Id","Description"\n"003000000000001AAA","first\nsecond line"\n')
    assert '"said ""hi"", then\r\nleft"' in first
    assert Path(results[1]["file"]).read_text(encoding="utf-8") == '"Id","Description"\n"003000000000004AAA",""\n'


def test_state_advances_per_poll_and_every_call_is_counted(
    tmp_path: Path, make_session: Callable[[FakeOrgServer], requests.Session]
) -> None:
    org = shutil.copytree(MINI, tmp_path / "slow")
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    (org / "org.json").write_text(json.dumps({**settings, "bulk": {"polls_to_complete": 3}}), encoding="utf-8")
    with start_fake_org(org) as fake:
        session = make_session(fake)
        created = call(
            fake, session, "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Contact"}
        )
        body = created.json()
        assert created.status_code == 200 and body["state"] == "UploadComplete" and body["id"] == sf_id("750", 1)
        assert list(body) == [
            "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
            "concurrencyMode", "contentType", "apiVersion", "lineEnding", "columnDelimiter",
        ]  # fmt: skip
        assert (body["object"], body["apiVersion"], body["lineEnding"], body["columnDelimiter"]) == (
            "Contact", 62.0, "LF", "COMMA",
        )  # fmt: skip
        polls = [call(fake, session, "GET", f"jobs/query/{body['id']}").json() for _ in range(4)]
        assert [p["state"] for p in polls] == ["InProgress", "InProgress", "JobComplete", "JobComplete"]
        assert polls[-1]["numberRecordsProcessed"] == 4 and polls[-1]["jobType"] == "V2Query"
        assert polls[0]["numberRecordsProcessed"] == 0
        log = fake.request_log
        assert len(log) == 5 and all(e.counted and e.status == 200 for e in log) and fake.api_calls == 5
        assert created.headers["Sforce-Limit-Info"] == "api-usage=11/5000"


def test_results_of_an_unfinished_job_are_refused(sf: Salesforce) -> None:
    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id FROM Account")
    with pytest.raises(SalesforceMalformedRequest) as info:
        client.get_query_results(job["id"])
    assert info.value.content == [
        {"message": f"Job [{job['id']}] is not complete: UploadComplete", "errorCode": "API_ERROR"}
    ]


def test_failed_job_raises_operation_error(sf: Salesforce, hooks: list[Callable[[BulkJob], None]]) -> None:
    def fail(job: BulkJob) -> None:
        job.outcome, job.error_message = "Failed", "Internal error while processing the query"

    hooks.append(fail)
    with pytest.raises(SalesforceOperationError, match=r"^Job failure\. Response content: Internal error while"):
        next(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))


def test_stuck_job_stays_in_progress(fake: FakeOrgServer, sf: Salesforce) -> None:
    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id FROM Account")
    fake.app.bulk.force(job["id"], "InProgress")
    assert [client.get_job(job["id"], True)["state"] for _ in range(5)] == ["InProgress"] * 5
    fake.app.bulk.force(job["id"], "JobComplete")
    assert client.get_job(job["id"], True)["state"] == "JobComplete"


def test_abort_and_delete(sf: Salesforce) -> None:
    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id FROM Account")
    aborted = client.abort_job(job["id"], True)
    assert aborted["state"] == "Aborted" and aborted["id"] == job["id"]
    with pytest.raises(SalesforceOperationError, match=r"^Job failure"):
        client.wait_for_job(job["id"], True, wait=0)
    # Salesforce answers DELETE with 204 and no body; simple-salesforce 1.12.10 still calls .json() on it.
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client.delete_job(job["id"], True)
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(job["id"], True)

    done = client.create_job("query", "SELECT Id FROM Account")
    client.wait_for_job(done["id"], True, wait=0)
    with pytest.raises(SalesforceMalformedRequest) as info:
        client.abort_job(done["id"], True)
    assert info.value.content == [
        {"message": "Aborting already Completed Job not allowed", "errorCode": "INVALIDJOBSTATE"}
    ]
    running = client.create_job("query", "SELECT Id FROM Account")
    with pytest.raises(SalesforceMalformedRequest) as info:
        client.delete_job(running["id"], True)
    assert info.value.content[0]["errorCode"] == "INVALIDJOBSTATE"


@pytest.mark.parametrize(
    ("obj", "soql", "code", "message"),
    [
        (
            "Account",
            "SELECT Id, BillingAddress FROM Account",
            "API_ERROR",
            "Selecting compound data not supported in Bulk Query",
        ),
        (  # Salesforce's default quirks: Attachment is not served by Bulk (base64 fields: test_fakeorg_bulk_quirks)
            "Attachment",
            "SELECT Id, Body FROM Attachment",
            "INVALIDENTITY",
            "Entity 'Attachment' is not supported by the Bulk API.",
        ),
        ("Account", "SELECT COUNT() FROM Account", "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0"),
        ("Account", "SELECT Id FROM Account LIMIT 5 OFFSET 2", "API_ERROR", "OFFSET is not supported by Bulk API 2.0"),
        (
            "Account",
            "SELECT Id, Foo FROM Account",
            "INVALID_FIELD",
            "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity "
            "'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom "
            "field name. Please reference your WSDL or the describe call for the appropriate names.",
        ),
        (
            "Xyzzy",
            "SELECT Id FROM Xyzzy",
            "INVALID_TYPE",
            "\nSELECT Id FROM Xyzzy\n               ^\nERROR at Row:1:Column:16\nsObject type 'Xyzzy' is not "
            "supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity "
            "name. Please reference your WSDL or the describe call for the appropriate names.",
        ),
    ],
)
def test_refused_queries_answer_as_salesforce_does(
    fake: FakeOrgServer, sf: Salesforce, obj: str, soql: str, code: str, message: str
) -> None:
    before = len(fake.app.bulk.listing()["records"])
    with pytest.raises(SalesforceMalformedRequest) as info:
        next(getattr(sf.bulk2, obj).query(soql, wait=0))
    assert info.value.content == [{"message": message, "errorCode": code}]
    assert len(fake.app.bulk.listing()["records"]) == before  # no job was created


def test_locators_page_headers_and_version(fake: FakeOrgServer, session: requests.Session, sf: Salesforce) -> None:
    job = sf.bulk2.Account._client.create_job("query", "SELECT Id FROM Account")
    sf.bulk2.Account._client.wait_for_job(job["id"], True, wait=0)
    results = f"jobs/query/{job['id']}/results"
    first = call(fake, session, "GET", results, params={"maxRecords": 5})
    assert (first.headers["Sforce-NumberOfRecords"], first.headers["Sforce-Locator"]) == ("5", "NQ")
    assert first.headers["Content-Type"] == "text/csv" and first.headers["Sforce-Limit-Info"].startswith("api-usage=")
    again = call(fake, session, "GET", results, params={"maxRecords": 5})
    assert again.content == first.content  # a locator (or none) can be read again
    last = call(fake, session, "GET", results, params={"maxRecords": 50, "locator": "MTU"})  # offset 15
    assert (last.headers["Sforce-NumberOfRecords"], last.headers["Sforce-Locator"]) == ("4", "null")
    assert last.text.count("\n") == 5
    bad = call(fake, session, "GET", results, params={"locator": "bm9wZQ"})
    assert bad.status_code == 400 and bad.json() == [
        {"message": "Invalid locator: bm9wZQ", "errorCode": "INVALIDLOCATOR"}
    ]
    zero = call(fake, session, "GET", results, params={"maxRecords": 0})
    assert zero.status_code == 400 and zero.json()[0]["errorCode"] == "API_ERROR"
    other = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session, version="61.0")
    with pytest.raises(SalesforceGeneralError) as info:
        other.bulk2.Account._client.get_query_results(job["id"])
    assert info.value.status == 409


def test_page_size_knob_caps_max_records(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.app.bulk.page_size = 6
    try:
        pages = list(sf.bulk2.Account.query("SELECT Id FROM Account", max_records=50000, wait=0))
    finally:
        fake.app.bulk.page_size = 50000
    assert [len(rows_of(p)) - 1 for p in pages] == [6, 6, 6, 1]


def test_column_delimiter_and_line_ending(sf: Salesforce) -> None:
    [page] = sf.bulk2.Contact.query(
        "SELECT Id, Account.Name, Description FROM Contact WHERE Id = '003000000000002AAA'",
        column_delimiter=ColumnDelimiter.PIPE,
        line_ending=LineEnding.CRLF,
        wait=0,
    )
    assert page == (
        '"Id"|"Account.Name"|"Description"\r\n'
        '"003000000000002AAA"|"Zoë «Ünicode» Ltd. 🚀"|"said ""hi"", then\r\nleft"\r\n'
    )


def test_job_listing(fake: FakeOrgServer, session: requests.Session, sf: Salesforce) -> None:
    job = sf.bulk2.Account._client.create_job("queryAll", "SELECT Id FROM Account")
    listing = call(fake, session, "GET", "jobs/query").json()
    assert listing["done"] is True and listing["nextRecordsUrl"] is None
    assert next(j for j in listing["records"] if j["id"] == job["id"])["operation"] == "queryAll"


def test_bulk_and_rest_serve_the_same_generated_rows(
    tmp_path: Path, make_session: Callable[[FakeOrgServer], requests.Session]
) -> None:
    root = generated_org(tmp_path / "o", {"Account": {"count": 2500, "seed": 3}}, objects=("Account",))
    with start_fake_org(root) as fake:
        fake.app.bulk.page_size = 1000
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=make_session(fake))
        soql = "SELECT Id, Name, IsDeleted, AnnualRevenue, CreatedDate, Description, BillingCity FROM Account"
        pages = list(sf.bulk2.Account.query(soql, wait=0))
        rest = list(sf.query_all_iter(soql))
    bulk_rows = [row for page in pages for row in rows_of(page)[1:]]
    assert [len(rows_of(p)) - 1 for p in pages] == [1000, 1000, 450] and len(rest) == 2450
    assert [r[0] for r in bulk_rows] == [r["Id"] for r in rest]
    assert {r[0] for r in bulk_rows} < {generated_id("001", i) for i in range(2500)}
    for row, record in zip(bulk_rows, rest, strict=True):
        expected = [
            record["Id"], record["Name"], "false", _text(record["AnnualRevenue"]),
            record["CreatedDate"].replace("+0000", "Z"), _text(record["Description"]), _text(record["BillingCity"]),
        ]  # fmt: skip
        assert row == expected


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize(
    ("bulk", "message"),
    [
        ({"polls": 2}, r'org.json "bulk" takes only \{"polls_to_complete": N, "page_size": N\}'),
        ({"polls_to_complete": 0}, r"bulk.polls_to_complete must be an integer >= 1, got 0"),
        ({"page_size": "big"}, r"bulk.page_size must be an integer >= 1, got 'big'"),
    ],
)
def test_bad_bulk_knobs_are_clear_errors(tmp_path: Path, bulk: dict[str, Any], message: str) -> None:
    root = generated_org(tmp_path / "o", {}, objects=("Account",), extra={"bulk": bulk})
    with pytest.raises(FakeOrgError, match=message):
        FakeOrgServer(root)
