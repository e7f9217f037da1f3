"""Each fault rule against unmodified simple-salesforce gives the exception it raises against a real
org (notes 1.7/1.8); slow and dropped bodies are real socket-level failures."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from plugin.fakeorg import FakeOrgServer, FaultRuleError, sf_id
from plugin.fakeorg.faultrules import parse_rule
from plugin.fakeorg.faults import FaultInjector
from plugin.fakeorg.state import BulkJobOverride, ServerState
from plugin.salesforce.session import build_session

MINI = Path(__file__).parent / "orgs" / "mini"
QUERY = "SELECT Id, Name FROM Account"


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOrgServer) -> None:
    fake.reset()


@pytest.fixture
def login_sf(fake: FakeOrgServer) -> Iterator[Salesforce]:
    """Password auth, so simple-salesforce can log in again on 401."""
    with fake.client_session() as session:
        yield Salesforce(
            username=fake.username,
            password=fake.password,
            security_token=fake.security_token,
            session=session,
            version="62.0",
        )


def _paths(fake: FakeOrgServer, part: str) -> list[tuple[str, int]]:
    return [(e.path, e.status) for e in fake.request_log if part in e.path]


def test_query_timeout_on_one_object(fake: FakeOrgServer, sf: Salesforce) -> None:
    rule = fake.add_fault({"action": "respond", "sobject": "Contact", "error_code": "QUERY_TIMEOUT"})
    assert sf.query("SELECT Id FROM Account LIMIT 1")["done"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Contact")
    assert info.value.status == 400
    assert info.value.content == [
        {"message": "Your query request was running for too long.", "errorCode": "QUERY_TIMEOUT"}
    ]
    assert fake.request_log[-1].faults == (rule,) and fake.request_log[-1].sobject == "Contact"
    assert not fake.request_log[-1].counted


def test_503_with_an_html_body(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "respond", "status": 503, "path": "/limits"})
    with pytest.raises(SalesforceGeneralError) as info:
        sf.limits()
    assert info.value.status == 503
    assert info.value.content.startswith("<html><head><title>Service Unavailable</title>")


def test_the_products_retry_session_recovers_from_503_and_429(fake: FakeOrgServer) -> None:
    # retry_after=0: urllib3 honours Retry-After instead of its backoff, so the test does not sleep.
    fake.add_fault({"action": "respond", "status": 503, "path": "/limits", "times": 2, "retry_after": 0})
    fake.add_fault({"action": "respond", "status": 429, "path": "/sobjects", "times": 1, "retry_after": 0})
    with build_session(extra_ca=fake.ca_bundle) as session:
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session, version="62.0")
        assert sf.limits()["DailyApiRequests"]["Max"] == 5000
        assert sf.describe() is not None
    # The second retry backs off for 1 s (urllib3 ignores Retry-After: 0); a permanent 503 would
    # end in SalesforceGeneralError after 4 attempts, 3 s of backoff later.
    assert [e.status for e in fake.request_log] == [503, 503, 200, 429, 200]


def test_429_carries_retry_after(fake: FakeOrgServer, session: requests.Session) -> None:
    fake.add_fault({"action": "respond", "status": 429, "retry_after": 7})
    response = session.get(f"{fake.instance_url}/services/data/v62.0/limits")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert response.headers["Content-Type"] == "text/html;charset=UTF-8"


def test_request_limit_exceeded_after_n_calls(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "rate_limit", "after": 3})
    sf.query("SELECT Id FROM Organization")
    sf.query("SELECT Id FROM Organization")
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 0}
    assert sf.api_usage["api-usage"].used == sf.api_usage["api-usage"].total == 5000
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Organization")
    assert info.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert fake.snapshot()["api_usage"] == {"used": 5000, "max": 5000, "remaining": 0}
    assert fake.api_calls == 3


def test_session_expired_mid_pagination_with_a_session_id(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "expire_session", "path": "/query/01g", "nth": 1})
    pages = sf.query_all_iter(QUERY, include_deleted=True)
    first_page = [next(pages) for _ in range(7)]
    assert len(first_page) == 7
    with pytest.raises(SalesforceExpiredSession):
        next(pages)


def test_session_expired_mid_pagination_with_a_login_resumes_the_locator(
    fake: FakeOrgServer, login_sf: Salesforce
) -> None:
    fake.add_fault({"action": "expire_session", "path": "/query/01g", "nth": 2})
    rows = list(login_sf.query_all_iter(QUERY, include_deleted=True))
    assert len({r["Id"] for r in rows}) == 20
    assert [s for _, s in _paths(fake, "/query")] == [200, 200, 401, 200]
    assert fake.snapshot()["logins"] == 2


def test_repeated_401_bounds(fake: FakeOrgServer, login_sf: Salesforce) -> None:
    """Salesforce._call_salesforce gives up after 4 logins; SFType re-logs in without bound."""
    fake.add_fault({"action": "respond", "error_code": "INVALID_SESSION_ID", "path": "/limits"})
    with pytest.raises(SalesforceExpiredSession):
        login_sf.limits()
    assert fake.snapshot()["logins"] == 1 + 4
    fake.reset()
    fake.add_fault({"action": "respond", "error_code": "INVALID_SESSION_ID", "path": "Account/describe", "times": 6})
    assert login_sf.Account.describe()["name"] == "Account"
    assert fake.snapshot()["logins"] == 6


def test_non_json_401(fake: FakeOrgServer, sf: Salesforce, login_sf: Salesforce) -> None:
    fake.add_fault(
        {"action": "respond", "status": 401, "body": "<html>Unauthorized</html>", "content_type": "text/html"}
    )
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.limits()
    assert info.value.content == "<html>Unauthorized</html>"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        login_sf.limits()


def test_slow_response_past_the_read_timeout(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "delay", "seconds": 60, "path": "/query"})
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query(QUERY, timeout=(5, 0.2))


def test_slow_body_times_out_mid_stream(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "slow_body", "seconds": 60, "chunk_bytes": 64, "path": "/query"})
    response = sf.session.get(
        f"{sf.base_url}query", params={"q": QUERY}, headers=sf.headers, stream=True, timeout=(5, 0.3)
    )
    assert response.status_code == 200
    received = bytearray()
    with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
        for chunk in response.iter_content(16):
            received += chunk
    assert len(received) == 64
    response.close()


def test_connection_dropped_mid_query_page(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "drop", "path": "/query/01g"})
    pages = sf.query_all_iter(QUERY, include_deleted=True)
    assert len([next(pages) for _ in range(7)]) == 7
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        next(pages)


def test_connection_dropped_mid_blob(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "drop", "path": "/Body$", "after_bytes": 128})
    url = f"{sf.base_url}sobjects/Attachment/{sf_id('00P', 1)}/Body"
    received = bytearray()
    with (
        sf.session.get(url, headers=sf.headers, stream=True) as response,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        for chunk in response.iter_content(32):
            received += chunk
    blob = MINI / "blobs" / "Attachment" / sf_id("00P", 1) / "Body"
    assert len(received) == 128 and response.headers["Content-Length"] == str(blob.stat().st_size)
    assert fake.api_calls == 1  # a blob download is an API call, even a broken one


def test_connection_dropped_before_any_header(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "drop", "before_headers": True, "path": "/limits"})
    with pytest.raises(requests.exceptions.ConnectionError, match="Remote end closed connection without response"):
        sf.limits()


def test_invalid_query_locator(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "invalidate_locator", "path": "/query/01g"})
    with pytest.raises(SalesforceMalformedRequest) as info:
        list(sf.query_all_iter(QUERY))
    assert info.value.content == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


@pytest.mark.parametrize(
    ("rule", "code", "message"),
    [
        ({}, "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."),
        ({"code": "API_DISABLED_FOR_ORG", "message": "API is not enabled for this Organization or Partner"},
         "API_DISABLED_FOR_ORG", "API is not enabled for this Organization or Partner"),
    ],
)  # fmt: skip
def test_soap_login_failures(fake: FakeOrgServer, rule: dict[str, Any], code: str, message: str) -> None:
    fake.add_fault({"action": "login_fail", **rule})
    with fake.client_session() as session, pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=fake.username, password=fake.password, security_token=fake.security_token, session=session)
    assert (info.value.code, info.value.auth_message) == (code, message)


def test_oauth_login_failure(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "login_fail", "path": "oauth2"})
    with fake.client_session() as session, pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(
            username=fake.username,
            consumer_key=fake.credentials.client_id,
            privatekey_file=fake.info()["jwt_key_file"],
            session=session,
        )
    assert (info.value.code, info.value.auth_message) == ("invalid_grant", "authentication failure")
    assert fake.snapshot()["logins"] == 0


def test_call_numbers_first_every_times(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "respond", "error_code": "QUERY_TIMEOUT", "path": "/query", "first": 2, "every": 2,
                    "times": 3})  # fmt: skip
    failed = []
    for n in range(1, 10):
        try:
            sf.query("SELECT Id FROM Organization")
        except SalesforceMalformedRequest:
            failed.append(n)
    assert failed == [2, 4, 6]
    assert fake.faults.rules()[0] | {"matched": 9, "fired": 3} == fake.faults.rules()[0]


def test_probability_is_seeded(fake: FakeOrgServer, sf: Salesforce) -> None:
    fake.add_fault({"action": "respond", "error_code": "QUERY_TIMEOUT", "probability": 0.5, "seed": 42})
    failed = []
    for n in range(20):
        try:
            sf.query("SELECT Id FROM Organization")
        except SalesforceMalformedRequest:
            failed.append(n)
    rng = random.Random(42)
    assert failed == [n for n in range(20) if rng.random() < 0.5]
    assert 0 < len(failed) < 20


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"action": "explode"}, "does not match any of the expected tags"),
        ({"action": "respond"}, "status is required unless error_code is one of"),
        ({"action": "respond", "status": 503, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"action": "delay", "seconds": 1, "nth": 2, "first": 1}, "give nth or first/times, not both"),
        ({"action": "delay", "seconds": 1, "path": "(("}, "path is not a valid regular expression"),
        ({"action": "rate_limit", "after": 1, "path": "/query"}, "rate_limit applies to the whole org"),
        ({"action": "drop", "before_headers": True, "after_bytes": 3}, "leave after_bytes out"),
        ({"action": "bulk_state", "state": "Done"}, "bulk_state.state: Input should be 'Failed', 'Aborted'"),
        ({"action": "bulk_state", "state": "Aborted", "error_message": "x"}, "error_message goes with state Failed"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rule: dict[str, Any], problem: str) -> None:
    with pytest.raises(FaultRuleError, match="invalid fault rule") as info:
        parse_rule(rule)
    assert problem in str(info.value)


def test_duplicate_rule_ids_are_refused(fake: FakeOrgServer) -> None:
    fake.add_fault({"id": "x", "action": "delay", "seconds": 1})
    with pytest.raises(FaultRuleError, match="a fault rule with id 'x' exists"):
        fake.add_fault({"id": "x", "action": "delay", "seconds": 1})


def _bulk_request(method: str, path: str, body: dict[str, Any] | None = None) -> Request:
    return Request(EnvironBuilder(method=method, path=path, json=body).get_environ())


def test_bulk_state_rules_reach_the_bulk_module_through_the_state_seam() -> None:
    """The Bulk module answers job requests; the seam is ServerState.bulk_job_override(job_id)."""
    state = ServerState(org_id="00D000000000042", api_max=100, api_remaining=100)
    faults = FaultInjector(state)
    faults.add({"action": "bulk_state", "state": "Failed", "sobject": "Contact"})
    faults.add({"action": "bulk_state", "state": "InProgress", "path": "750000000000001"})
    created: list[str] = []

    def bulk_route(request: Request) -> tuple[Response, bool]:
        created.append(sf_id("750", len(created) + 1))
        return Response(json.dumps({"id": created[-1], "state": "UploadComplete"}), 200), True

    jobs = "/services/data/v62.0/jobs/query"
    account = faults.handle(
        _bulk_request("POST", jobs, {"operation": "query", "query": "SELECT Id FROM Account"}), bulk_route
    )
    contact = faults.handle(
        _bulk_request("POST", jobs, {"operation": "query", "query": "SELECT Id FROM Contact"}), bulk_route
    )
    assert (account.sobject, account.fired, contact.sobject, contact.fired) == ("Account", (), "Contact", ("rule-1",))
    failed = state.bulk_job_override(created[1])
    assert failed is not None and failed.state == "Failed"
    assert (failed.error_message or "").startswith("UNKNOWN_EXCEPTION: An unexpected error occurred.")
    assert state.bulk_job_override(created[0]) is None
    polled = faults.handle(_bulk_request("GET", f"{jobs}/{created[0]}"), lambda r: (Response("{}"), True))
    assert polled.fired == ("rule-2",)
    assert state.bulk_job_override(created[0]) == BulkJobOverride("InProgress")
    faults.add({"id": "cut", "action": "respond", "status": 500, "sobject": "Contact", "path": "/results$"})
    results = faults.handle(_bulk_request("GET", f"{jobs}/{created[1]}/results"), lambda r: (Response("a"), True))
    assert (results.sobject, results.fired) == ("Contact", ("rule-1", "cut"))  # the job's sObject, learnt
    state.reset()
    assert state.bulk_job_override(created[0]) is None
