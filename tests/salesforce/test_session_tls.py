"""The client's session parses its CA bundle once, not once per TLS connection (requests hands
urllib3 a path, which it loads again for every new connection: tens of ms for certifi's bundle)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.session import build_session
from tests.conftest import DEMO_ORG


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOrgServer]:
    with start_fake_org(DEMO_ORG) as server:
        yield server


def test_new_connections_reuse_one_loaded_context(fake: FakeOrgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    session = build_session(extra_ca=Path(fake.ca_bundle))
    token = fake.info()["access_token"]
    try:
        for _ in range(3):  # the fake closes every connection, so each request opens a new one
            response = session.get(
                f"{fake.instance_url}/services/data/v62.0/sobjects/Account/describe",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200 and response.json()["name"] == "Account"
            assert response.headers.get("Connection") == "close"
    finally:
        session.close()
    assert len(loads) == 1  # at build time; none per connection


def test_the_loaded_context_still_refuses_an_unknown_ca(fake: FakeOrgServer) -> None:
    session = build_session()  # certifi's public CAs only: the fake's throw-away CA is not among them
    try:
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(f"{fake.instance_url}/services/data/")
    finally:
        session.close()
