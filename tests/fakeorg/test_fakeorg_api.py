"""Unmodified simple-salesforce (and raw requests) against the running fake org."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from plugin.fakeorg import FakeOrgError, FakeOrgServer, sf_id, start_fake_org
from plugin.fakeorg.jsonlit import loads

MINI = Path(__file__).parent / "orgs" / "mini"


class ExactFloat(str):
    """What a careful client passes as parse_float: keeps the literal text."""


def records_file(name: str) -> dict[str, dict[str, Any]]:
    body = loads((MINI / "records" / f"{name}.json").read_bytes())
    records = body["records"] if isinstance(body, dict) else body
    return {r["Id"]: r for r in records}


def test_versions_list_needs_no_session(fake: FakeOrgServer, session: requests.Session) -> None:
    response = session.get(f"{fake.instance_url}/services/data/")
    assert response.status_code == 200
    assert {"label": "API v62.0", "url": "/services/data/v62.0", "version": "62.0"} in response.json()


def test_describe_global_lists_every_described_object(sf: Salesforce) -> None:
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert names == ["Account", "Attachment", "Contact", "Organization"]
    account = sf.describe()["sobjects"][0]
    assert account["urls"]["describe"] == "/services/data/v62.0/sobjects/Account/describe"


def test_restful_describe_is_the_file_with_urls_in_the_requested_version(sf: Salesforce) -> None:
    described = sf.restful("sobjects/Contact/describe/")
    stored = loads((MINI / "describe" / "Contact.json").read_bytes())
    assert described["urls"]["sobject"] == "/services/data/v62.0/sobjects/Contact"
    assert [f["name"] for f in described["fields"]] == [f["name"] for f in stored["fields"]]
    assert described["urls"]["uiDetailTemplate"] == stored["urls"]["uiDetailTemplate"]


def test_query_all_iter_walks_every_small_page(fake: FakeOrgServer, sf: Salesforce) -> None:
    before = len(fake.request_log)
    got = list(sf.query_all_iter("SELECT Id, Name FROM Account", include_deleted=True))
    assert [r["Id"] for r in got] == list(records_file("Account"))
    pages = [e for e in fake.request_log[before:] if "/query" in e.path]
    assert len(pages) == 3  # 20 rows at 7 per page
    assert all(re.fullmatch(r"/services/data/v62.0/query/01g\w{15}-\d+", p.path) for p in pages[1:])


def test_batch_size_header_is_honoured_without_the_override(
    make_session: Callable[[FakeOrgServer], requests.Session],
) -> None:
    with FakeOrgServer(MINI) as fake:
        session = make_session(fake)
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session)
        first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
        assert first["done"] and len(first["records"]) == 19


def test_values_come_back_with_exact_literal_text(fake: FakeOrgServer, session: requests.Session) -> None:
    stored = records_file("Account")
    fields = sorted({k for r in stored.values() for k in r if k != "attributes"})
    url = f"{fake.instance_url}/services/data/v62.0/queryAll/"
    headers = {"Authorization": f"Bearer {fake.access_token}"}
    served: dict[str, dict[str, Any]] = {}
    response = session.get(url, params={"q": f"SELECT {', '.join(fields)} FROM Account"}, headers=headers)
    while True:
        body = loads(response.content)
        served.update({r["Id"]: r for r in body["records"]})
        if body["done"]:
            break
        response = session.get(fake.instance_url + body["nextRecordsUrl"], headers=headers)
    assert served.keys() == stored.keys()
    for record_id, record in stored.items():
        for name in fields:
            value, expected = served[record_id][name], record.get(name)
            assert value == expected and type(value) is type(expected), (record_id, name)


def test_raw_body_carries_number_literals_unchanged(fake: FakeOrgServer, session: requests.Session) -> None:
    url = f"{fake.instance_url}/services/data/v62.0/query"
    # one 18-char and one 15-char id: both forms select the record
    ids = "'001000000000006AAA', '001000000000007'"
    soql = f"SELECT AnnualRevenue, NumberOfEmployees FROM Account WHERE Id IN ({ids})"
    raw = session.get(url, params={"q": soql}, headers={"Authorization": f"Bearer {fake.access_token}"}).text
    assert '"AnnualRevenue":-0.0,"NumberOfEmployees":-0}' in raw
    assert '"AnnualRevenue":12345678901234567890.123456789,"NumberOfEmployees":42}' in raw


def test_literals_survive_simple_salesforce_parse_float(fake: FakeOrgServer, session: requests.Session) -> None:
    sf = Salesforce(
        instance_url=fake.instance_url,
        session_id=fake.access_token,
        session=session,
        version="62.0",
        parse_float=ExactFloat,
    )
    got = {r["Id"]: r for r in sf.query_all_iter("SELECT Id, AnnualRevenue, BillingLatitude FROM Account")}
    assert got[sf_id("001", 1)]["AnnualRevenue"] == "1.50"
    assert got[sf_id("001", 7)]["AnnualRevenue"] == "12345678901234567890.123456789"
    assert got[sf_id("001", 6)]["AnnualRevenue"] == "-0.0"
    assert got[sf_id("001", 5)]["AnnualRevenue"] == "1E-7"
    assert got[sf_id("001", 1)]["BillingLatitude"] == "1e5"
    assert got[sf_id("001", 12)]["AnnualRevenue"] == 123456789012345678


def test_strings_and_csv_typed_values(sf: Salesforce) -> None:
    rows = {r["Id"]: r for r in sf.query_all_iter("SELECT Id, Name, Description FROM Account")}
    assert rows[sf_id("001", 7)]["Name"] == "Zoë «Ünicode» Ltd. 🚀"
    assert rows[sf_id("001", 3)]["Description"] == "crlf\r\nline"
    assert rows[sf_id("001", 2)]["Description"] == "cr\ronly"
    contacts = sf.query("SELECT Id, Description, IsEmailBounced, MailingLatitude, Email, Account.Name FROM Contact")
    second = contacts["records"][1]
    assert second["Description"] == 'said "hi", then\r\nleft'
    assert second["IsEmailBounced"] is True and second["Email"] is None
    assert second["Account"]["Name"] == "Zoë «Ünicode» Ltd. 🚀"
    assert contacts["records"][2]["Account"] is None


def test_compound_and_unset_fields(sf: Salesforce) -> None:
    rows = sf.query("SELECT Id, BillingAddress, ShippingAddress, Phone FROM Account ORDER BY Id LIMIT 2")["records"]
    assert rows[0]["BillingAddress"]["street"] == "1 Market St\nSuite 300"
    assert rows[1]["BillingAddress"] is None and rows[0]["ShippingAddress"] is None and rows[0]["Phone"] is None


def test_query_hides_deleted_rows_and_query_all_returns_them(sf: Salesforce) -> None:
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 19
    deleted = sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted["records"]] == [sf_id("001", 13)]


@pytest.mark.parametrize(("include_deleted", "total"), [(True, 20), (False, 19)])
def test_query_all_locators_look_like_query_ones_and_keep_the_recycle_bin(
    sf: Salesforce, include_deleted: bool, total: int
) -> None:
    """Salesforce answers queryAll with `/query/<locator>-<offset>` next pages (notes 2); the locator
    remembers it came from queryAll, so the deleted 13th row (on page 2 of 7-row pages) stays."""
    first = sf.query("SELECT Id FROM Account", include_deleted=include_deleted)
    assert first["totalSize"] == total and len(first["records"]) == 7
    assert re.fullmatch(r"/services/data/v62\.0/query/01g\w{15}-7", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["nextRecordsUrl"].endswith("-14")
    assert (sf_id("001", 13) in {r["Id"] for r in second["records"]}) is include_deleted
    rows = first["records"] + second["records"]
    while not second["done"]:
        second = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
        rows += second["records"]
    assert len({r["Id"] for r in rows}) == total


def test_count_query_has_no_records(sf: Salesforce) -> None:
    assert sf.query("SELECT COUNT() FROM Contact") == {"totalSize": 4, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, Foo FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM XYZZY", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
    ],
)
def test_bad_queries_raise_malformed_request(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.content[0]["errorCode"] == code


def test_bad_token_raises_expired_session(fake: FakeOrgServer, session: requests.Session) -> None:
    sf = Salesforce(instance_url=fake.instance_url, session_id="00D000000000042!nope", session=session)
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM Account")
    assert info.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_blob_url_in_query_downloads_the_file_bytes(fake: FakeOrgServer, sf: Salesforce) -> None:
    rows = sf.query_all("SELECT Id, Body FROM Attachment", include_deleted=True)["records"]
    assert rows[1]["Body"] is None
    url = rows[0]["Body"]
    assert url == f"/services/data/v62.0/sobjects/Attachment/{sf_id('00P', 1)}/Body"
    response = sf.session.get(f"https://{sf.sf_instance}{url}", headers=sf.headers, stream=True)
    with response:
        assert response.headers["Content-Type"] == "application/octetstream"
        data = b"".join(response.iter_content(64))
    assert data == (MINI / "blobs" / "Attachment" / sf_id("00P", 1) / "Body").read_bytes()


def test_missing_blob_and_unknown_path_are_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.restful(f"sobjects/Attachment/{sf_id('00P', 2)}/Body")
    assert info.value.content[0]["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("no/such/thing")


def test_single_record_endpoint(sf: Salesforce) -> None:
    record = sf.restful(f"sobjects/Attachment/{sf_id('00P', 1)}")
    assert record["Name"] == "logo.bin" and record["BodyLength"] == 301
    assert record["Body"].endswith("/Body")


def test_limits_track_the_api_usage_header(fake: FakeOrgServer, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Contact LIMIT 1")
    used_before = sf.api_usage["api-usage"].used
    calls_before = fake.api_calls
    limits = sf.limits()
    used = sf.api_usage["api-usage"]
    assert used.used == used_before + 1 and used.total == 5000
    assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 5000 - used.used}
    assert fake.api_calls == calls_before + 1
    assert fake.request_log[-1].path == "/services/data/v62.0/limits/" and fake.request_log[-1].status == 200


def test_unsupported_version_is_not_found(fake: FakeOrgServer, session: requests.Session) -> None:
    headers = {"Authorization": f"Bearer {fake.access_token}"}
    response = session.get(f"{fake.instance_url}/services/data/vv62.0/sobjects", headers=headers)
    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


class _Redirect(HTTPAdapter):
    """Sends https://login.salesforce.com/... to the fake (login URLs are hard-coded upstream)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.target = urlsplit(base)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self.target.scheme, self.target.netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


def test_soap_login_gives_a_working_session(
    fake: FakeOrgServer, make_session: Callable[[FakeOrgServer], requests.Session]
) -> None:
    session = make_session(fake)
    session.mount("https://login.salesforce.com/", _Redirect(fake.instance_url))
    sf = Salesforce(
        username=fake.username,
        password=fake.password,
        security_token=fake.security_token,
        session=session,
        version="62.0",
    )
    assert sf.sf_instance == fake.instance_url.removeprefix("https://")
    assert sf.session_id.startswith(fake.org_id[:15] + "!")
    assert sf.query("SELECT Id FROM Organization")["records"][0]["Id"] == fake.org_id
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=fake.username, password="wrong", security_token="", session=session)
    assert info.value.code == "INVALID_LOGIN"


def test_ca_bundle_is_a_pem_file(fake: FakeOrgServer) -> None:
    assert Path(fake.ca_bundle).read_text(encoding="ascii").startswith("-----BEGIN CERTIFICATE-----")


def test_daily_limit_and_expired_sessions(
    tmp_path: Path, make_session: Callable[[FakeOrgServer], requests.Session]
) -> None:
    org = shutil.copytree(MINI, tmp_path / "limited")
    (org / "org.json").write_text(
        json.dumps({"limits": {"DailyApiRequests": {"Max": 10, "Remaining": 2}}}), encoding="utf-8"
    )
    with FakeOrgServer(org) as fake:
        sf = Salesforce(
            instance_url=fake.instance_url,
            session_id=fake.access_token,
            session=make_session(fake),
            version="62.0",
        )
        assert sf.limits()["DailyApiRequests"] == {"Max": 10, "Remaining": 1}
        sf.query("SELECT Id FROM Organization")
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT Id FROM Organization")
        assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert fake.api_calls == 2 and fake.request_log[-1].status == 403
        fake.expire_sessions()
        with pytest.raises(SalesforceExpiredSession):
            sf.limits()


def test_port_in_use_is_a_clear_error(fake: FakeOrgServer) -> None:
    port = int(fake.instance_url.rsplit(":", 1)[1])
    with pytest.raises(FakeOrgError, match=r"cannot listen on 127\.0\.0\.1"):
        start_fake_org(MINI, port=port)
