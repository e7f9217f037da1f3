"""POST .../composite: each subrequest answered as its direct request is (bodies byte for byte,
errors, quirks, fault rules aimed at its path), at most 25 of them (5 queries), and one API call in all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from plugin.fakeorg import FakeOrgServer, start_fake_org
from tests.fakeorg.conftest import client_session
from tests.fakeorg.test_fakeorg_quirks import build_org

V = "/services/data/v62.0"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeOrgServer]:
    """The mini org with quirks (Account.AnnualRevenue hidden); fresh per test: rules and counts."""
    with start_fake_org(build_org(tmp_path / "org"), page_size=7) as server:
        yield server


@pytest.fixture
def session(fake: FakeOrgServer) -> Iterator[requests.Session]:
    s = client_session(fake)
    s.headers["Authorization"] = f"Bearer {fake.access_token}"
    yield s
    s.close()


def composite(fake: FakeOrgServer, session: requests.Session, urls: list[str], **extra: Any) -> requests.Response:
    subs = [{"method": "GET", "url": url, "referenceId": f"r{n}"} for n, url in enumerate(urls)]
    return session.post(f"{fake.instance_url}{V}/composite", json={"compositeRequest": subs, **extra})


def entries(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["compositeResponse"]
    return found


URLS = [
    f"{V}/sobjects/Account/describe",
    f"{V}/sobjects",
    f"{V}/sobjects/Nope__c/describe",
    f"{V}/query?q=SELECT+Id+FROM+Attachment",
    f"{V}/query?q=SELECT+Id+FROM+Nope__c",
]


def test_each_subrequest_gets_what_its_direct_request_gets_byte_for_byte(
    fake: FakeOrgServer, session: requests.Session
) -> None:
    direct = [session.get(f"{fake.instance_url}{url}") for url in URLS]
    before = fake.api_calls
    answer = composite(fake, session, URLS)
    assert fake.api_calls == before + 1  # the composite request; its subrequests are not API calls
    used = fake.snapshot()["api_usage"]
    assert answer.headers["Sforce-Limit-Info"] == f"api-usage={used['used']}/{used['max']}"
    got = entries(answer)
    assert [e["referenceId"] for e in got] == ["r0", "r1", "r2", "r3", "r4"]
    assert [e["httpStatusCode"] for e in got] == [r.status_code for r in direct] == [200, 200, 404, 200, 400]
    for entry, alone in zip(got, direct, strict=True):
        assert entry["body"] == alone.json()
        assert b'{"body":' + alone.content + b',"httpHeaders":' in answer.content  # spliced in as sent
        assert "Content-Length" not in entry["httpHeaders"]
    assert got[2]["body"] == [{"message": "The requested resource does not exist: Nope__c", "errorCode": "NOT_FOUND"}]
    assert got[4]["body"][0]["errorCode"] == "INVALID_TYPE"
    # Quirks apply: the hidden field is missing from the describe, as from the direct one.
    assert "AnnualRevenue" not in {f["name"] for f in got[0]["body"]["fields"]}
    # The log has each subrequest (not an API call) before the composite request itself.
    log = fake.request_log[-6:]
    assert [(e.method, e.path, e.composite, e.counted) for e in log] == [
        ("GET", f"{V}/sobjects/Account/describe", True, False),
        ("GET", f"{V}/sobjects", True, False),
        ("GET", f"{V}/sobjects/Nope__c/describe", True, False),
        ("GET", f"{V}/query", True, False),
        ("GET", f"{V}/query", True, False),
        ("POST", f"{V}/composite", False, True),
    ]
    assert log[0].sobject == "Account" and log[3].sobject == "Attachment"
    state = fake.snapshot()
    assert (state["requests"], state["subrequests"]) == (len(URLS) + 1, len(URLS))


def test_twenty_five_subrequests_at_most(fake: FakeOrgServer, session: requests.Session) -> None:
    assert len(entries(composite(fake, session, [f"{V}/sobjects/Account/describe"] * 25))) == 25
    refused = composite(fake, session, [f"{V}/sobjects/Account/describe"] * 26)
    assert refused.status_code == 400
    assert refused.json() == {
        "compositeResponse": [
            {
                "body": [
                    {"errorCode": "LIMIT_EXCEEDED", "message": "The request can’t contain more than 25 operations."}
                ],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": None,
            }
        ]
    }
    assert fake.request_log[-1].path == f"{V}/composite" and not any(e.composite for e in fake.request_log[-1:])


def test_five_queries_at_most(fake: FakeOrgServer, session: requests.Session) -> None:
    """Salesforce: "Up to 5 of these subrequests can be sObject Collections or query operations,
    including Query and QueryAll requests" (a query locator is a Query request too)."""
    queries = [f"{V}/queryAll/?q=SELECT+Id+FROM+Attachment", f"{V}/query?q=SELECT+Id+FROM+Account"] * 2
    allowed = entries(composite(fake, session, [*queries, f"{V}/query/01gFAKE-7", *([f"{V}/sobjects"] * 20)]))
    assert len(allowed) == 25
    refused = composite(fake, session, [*queries, f"{V}/queryAll/?q=SELECT+Id+FROM+Account", f"{V}/query/01gFAKE-7"])
    assert refused.status_code == 400
    [entry] = refused.json()["compositeResponse"]
    assert entry["body"] == [
        {
            "errorCode": "LIMIT_EXCEEDED",
            "message": "The request can’t contain more than 5 query or sObject Collections operations.",
        }
    ]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", "JSON_PARSER_ERROR", "The request body is not valid JSON"),
        (b"[]", "JSON_PARSER_ERROR", "The request body must be a JSON object"),
        (b'{"compositeRequest": []}', "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list"),
        (
            b'{"compositeRequest": [{"method": "GET", "url": "/services/data/v62.0/sobjects", "referenceId": "a-b"}]}',
            "JSON_PARSER_ERROR",
            "compositeRequest[0].referenceId must be letters, numbers and underscores only",
        ),
        (
            b'{"compositeRequest": [{"method": "GET", "url": "sobjects", "referenceId": "a"}]}',
            "JSON_PARSER_ERROR",
            "compositeRequest[0].url must be a path starting /services/data/",
        ),
        (
            b'{"compositeRequest": [{"method": "GET", "url": "/services/data/v62.0/sobjects", "referenceId": "a"},'
            b' {"method": "GET", "url": "/services/data/v62.0/sobjects", "referenceId": "a"}]}',
            "JSON_PARSER_ERROR",
            "Duplicate referenceId 'a'",
        ),
        (
            b'{"compositeRequest": [{"method": "GET", "url": "/services/data/v62.0/sobjects", "referenceId": "a",'
            b' "httpHeaders": {"Authorization": "Bearer x"}}]}',
            "INVALID_HEADER_TYPE",
            "compositeRequest[0]: Authorization come from the composite request itself",
        ),
    ],
)
def test_a_malformed_body_is_a_400_error_list(
    fake: FakeOrgServer, session: requests.Session, body: bytes, code: str, message: str
) -> None:
    answer = session.post(f"{fake.instance_url}{V}/composite", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    [error] = answer.json()
    assert error["errorCode"] == code and error["message"].startswith(message)


def test_what_a_subrequest_cannot_ask_for_and_all_or_none(fake: FakeOrgServer, session: requests.Session) -> None:
    got = entries(composite(fake, session, [f"{V}/sobjects/Account/describe", f"{V}/limits"]))
    assert got[0]["httpStatusCode"] == 200 and got[1]["httpStatusCode"] == 400
    assert got[1]["body"][0]["errorCode"] == "INVALID_API_INPUT"
    halted = entries(
        composite(fake, session, [f"{V}/sobjects/Account/describe", f"{V}/sobjects/Nope/describe"], allOrNone=True)
    )
    assert [e["httpStatusCode"] for e in halted] == [400, 404]
    assert halted[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    posted = session.post(
        f"{fake.instance_url}{V}/composite",
        json={"compositeRequest": [{"method": "DELETE", "url": f"{V}/sobjects/Account/describe", "referenceId": "x"}]},
    )
    assert entries(posted)[0]["httpStatusCode"] == 405  # the route's own answer to that method


def test_rules_aimed_at_a_subrequests_path_act_on_that_subrequest(
    fake: FakeOrgServer, session: requests.Session
) -> None:
    fake.add_fault({"action": "respond", "status": 503, "path": "/sobjects/Contact/describe", "times": 1})
    fake.add_fault({"action": "respond", "error_code": "REQUEST_LIMIT_EXCEEDED", "sobject": "Attachment", "times": 1})
    urls = [f"{V}/sobjects/{name}/describe" for name in ("Account", "Contact", "Attachment")]
    got = entries(composite(fake, session, urls))
    assert [e["httpStatusCode"] for e in got] == [200, 503, 403]
    assert isinstance(got[1]["body"], str) and "503" in got[1]["body"]  # an HTML page, as a JSON string
    assert got[2]["body"] == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert [len(e.faults) for e in fake.request_log[-4:]] == [0, 1, 1, 0]
    # The session expires at the second subrequest: it and the ones after it get 401.
    fake.add_fault({"action": "expire_session", "path": "/sobjects/Contact/describe", "times": 1})
    got = entries(composite(fake, session, urls))
    assert [e["httpStatusCode"] for e in got] == [200, 401, 401]
    assert got[2]["body"] == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_a_drop_aimed_at_a_subrequest_drops_the_composite_answer(
    fake: FakeOrgServer, session: requests.Session
) -> None:
    fake.add_fault({"action": "drop", "path": "/sobjects/Contact/describe", "times": 1})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        composite(fake, session, [f"{V}/sobjects/Account/describe", f"{V}/sobjects/Contact/describe"])
    assert len(entries(composite(fake, session, [f"{V}/sobjects/Contact/describe"]))) == 1  # once only


def test_rules_aimed_at_the_composite_request_itself(fake: FakeOrgServer, session: requests.Session) -> None:
    urls = [f"{V}/sobjects/Account/describe"]
    fake.add_fault({"action": "respond", "status": 503, "path": "/composite$", "times": 1, "retry_after": 1})
    failed = composite(fake, session, urls)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert fake.api_calls == 0 and not any(e.composite for e in fake.request_log)  # no subrequest ran
    fake.add_fault({"action": "drop", "path": "/composite$", "times": 1})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        composite(fake, session, urls)
    fake.add_fault({"action": "expire_session", "path": "/composite$", "times": 1})
    expired = composite(fake, session, urls)
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    fake.reset()
    fake.add_fault({"action": "rate_limit", "after": 1})
    assert len(entries(composite(fake, session, urls))) == 1
    limited = composite(fake, session, urls)
    assert limited.status_code == 403 and limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert fake.api_calls == 1  # the refused one is not counted


def test_a_query_page_from_the_response_cache_is_spliced_in_as_served(tmp_path: Path) -> None:
    org = build_org(tmp_path / "org")
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    (org / "org.json").write_text(json.dumps({**settings, "response_cache": "cache"}), encoding="utf-8")
    url = f"{V}/queryAll?q=SELECT+Id,+Name+FROM+Attachment"
    with start_fake_org(org, page_size=7) as fake, client_session(fake) as session:
        session.headers["Authorization"] = f"Bearer {fake.access_token}"
        first = composite(fake, session, [url])  # rendered into the cache
        alone = session.get(f"{fake.instance_url}{url}")  # served from it
        again = composite(fake, session, [url])
        cache = fake.snapshot()["response_cache"]
    assert (cache["misses"], cache["hits"]) == (1, 2)
    assert alone.status_code == 200 and b'{"body":' + alone.content + b',"httpHeaders":' in again.content
    assert entries(first)[0]["body"] == entries(again)[0]["body"] == alone.json()
