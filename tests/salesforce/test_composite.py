"""Describes through the Composite API: 25 objects to an API call, each object getting exactly what
its own describe call would have given it (bytes, errors, retries, re-logins), and one describe per
object where the org refuses Composite requests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from plugin.config import Credentials
from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.fakeorg.describes import make_field, make_sobject
from plugin.salesforce.client import OrgClient, RawBody
from plugin.salesforce.errors import (
    SalesforceAuthError,
    SalesforceError,
    SalesforceLimitError,
    SalesforceNotFoundError,
)
from tests.fakeorg.genorg import MINI
from tests.salesforce.exporting import FAST_RETRY, password_credentials, session_credentials

V = "/services/data/v62.0"
THINGS = [f"Thing{n:02d}__c" for n in range(27)]
NAMES = ["Account", "Attachment", "Contact", *THINGS]  # 30 objects: two Composite requests


def wide_org(root: Path) -> Path:
    org = shutil.copytree(MINI, root)
    for n, name in enumerate(THINGS):
        describe = make_sobject(name, f"a{n:02d}", [make_field("Id", "id"), make_field("Name", "string")])
        (org / "describe" / f"{name}.json").write_text(json.dumps(describe), encoding="utf-8")
    return org


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wide_org(tmp_path_factory.mktemp("composite") / "org")


@pytest.fixture
def fake(org: Path) -> Iterator[FakeOrgServer]:
    with start_fake_org(org) as server:
        yield server


def connect(fake: FakeOrgServer, credentials: Credentials | None = None) -> OrgClient:
    return OrgClient(
        credentials or session_credentials(fake), api_version="62.0", extra_ca=fake.ca_bundle, retry=FAST_RETRY
    )


def posts(fake: FakeOrgServer) -> list[int]:
    """The status of every composite request the fake answered."""
    return [e.status for e in fake.request_log if e.path == f"{V}/composite"]


def test_thirty_objects_take_two_api_calls_and_each_describe_is_the_direct_ones_bytes(fake: FakeOrgServer) -> None:
    client = connect(fake)
    try:
        found = client.describe_many(NAMES)
        assert client.api_calls == fake.api_calls == 2 and posts(fake) == [200, 200]
        subrequests = [e for e in fake.request_log if e.composite]
        assert [e.sobject for e in subrequests] == NAMES  # 25, then 5, in the plan's order
        assert list(found) == NAMES
        for name in ("Account", "Thing26__c"):
            alone = client.describe(name)
            body = found[name]
            assert isinstance(body, RawBody) and body.raw == alone.raw and body.data == alone.data
    finally:
        client.close()


def test_a_subrequest_error_is_the_error_the_direct_describe_raises(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "respond", "error_code": "REQUEST_LIMIT_EXCEEDED", "path": "Contact/describe"})
    client = connect(fake)
    try:
        found = client.describe_many(["Account", "Nope__c", "Contact"])
        assert fake.api_calls == 1 and isinstance(found["Account"], RawBody)
        for name, kind in (("Nope__c", SalesforceNotFoundError), ("Contact", SalesforceLimitError)):
            error = found[name]
            with pytest.raises(kind) as direct:
                client.describe(name)
            assert isinstance(error, kind) and type(error) is type(direct.value)
            assert (str(error), error.code, error.retryable, error.object_name) == (
                str(direct.value),
                direct.value.code,
                direct.value.retryable,
                name,
            )
    finally:
        client.close()


def test_a_5xx_subrequest_is_described_again_directly_with_its_retries(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "respond", "status": 503, "path": "Contact/describe", "times": 2})
    client = connect(fake)
    try:
        found = client.describe_many(["Account", "Contact"])
        assert all(isinstance(found[n], RawBody) for n in ("Account", "Contact"))
        contact = [(e.status, e.composite) for e in fake.request_log if e.path.endswith("/Contact/describe")]
        assert contact == [(503, True), (503, False), (200, False)]  # urllib3 retried the direct GET
        assert client.api_calls == fake.api_calls == 2  # the composite and the good direct describe
    finally:
        client.close()


def test_the_composite_request_is_retried_like_a_get(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "respond", "status": 503, "path": "/composite$", "times": 2})
    fake.add_fault({"action": "drop", "path": "/composite$", "first": 3, "times": 1})
    client = connect(fake)
    try:
        found = client.describe_many(["Account", "Contact"])
        assert all(isinstance(b, RawBody) for b in found.values())
        assert posts(fake) == [503, 503, 200, 200]  # 5xx twice (urllib3), a dropped answer (with_retries)
        assert client.api_calls == fake.api_calls == 2
    finally:
        client.close()


def test_an_expired_session_in_the_composite_logs_in_again(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "expire_session", "path": "Attachment/describe", "times": 1})
    client = connect(fake, password_credentials(fake))
    try:
        found = client.describe_many(["Account", "Attachment", "Contact"])
        assert all(isinstance(b, RawBody) for b in found.values()) and client.relogins == 1
        assert posts(fake) == [200, 200]  # sent again with the new session
    finally:
        client.close()
    fake.reset()
    fake.add_fault({"action": "expire_session", "path": "/composite$", "times": 1})
    only_token = connect(fake)
    try:
        with pytest.raises(SalesforceAuthError, match="SF_ACCESS_TOKEN expired"):
            only_token.describe_many(["Account"])
    finally:
        only_token.close()


def test_the_api_limit_at_the_composite_request_stops_the_describes(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "rate_limit", "after": 0})
    client = connect(fake)
    try:
        with pytest.raises(SalesforceLimitError, match="REQUEST_LIMIT_EXCEEDED"):
            client.describe_many(["Account"])
    finally:
        client.close()


def test_an_org_that_refuses_composite_is_described_one_object_a_call_said_once(fake: FakeOrgServer) -> None:
    fake.add_fault({"action": "respond", "error_code": "NOT_FOUND", "path": "/composite$"})
    client = connect(fake)
    try:
        with capture_logs() as logs:
            first = client.describe_many(NAMES)
            second = client.describe_many(["Account", "Nope__c"])
        refusals = [e for e in logs if e["event"].startswith("the org refuses the Composite API")]
        assert len(refusals) == 1 and refusals[0]["code"] == "NOT_FOUND"
        assert posts(fake) == [404]  # tried once; never again by this client
        assert fake.api_calls == len(NAMES) + 2  # one describe per object
        assert client.api_calls == fake.api_calls + 1  # and the 404 (the fake counts no injected answer)
        assert all(isinstance(first[n], RawBody) for n in NAMES)
        assert isinstance(second["Account"], RawBody) and isinstance(second["Nope__c"], SalesforceNotFoundError)
        assert client.composite_refused is not None and "NOT_FOUND" in client.composite_refused
    finally:
        client.close()


def test_what_describe_many_returns_is_one_result_per_object(fake: FakeOrgServer) -> None:
    client = connect(fake)
    try:
        found = client.describe_many([])
        assert found == {} and fake.api_calls == 0
        results = client.describe_many(["Nope__c"])
        assert isinstance(results["Nope__c"], SalesforceError)
    finally:
        client.close()
