"""Fixtures for the fake org tests: the mini org folder, a running server, simple-salesforce clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from plugin.fakeorg import FakeOrgServer, start_fake_org

MINI = Path(__file__).parent / "orgs" / "mini"


def client_session(fake: FakeOrgServer) -> requests.Session:
    """A session trusting only the fake's CA; trust_env=False so REQUESTS_CA_BUNDLE cannot override it."""
    session = requests.Session()
    session.verify = str(fake.ca_bundle)
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOrgServer]:
    with start_fake_org(MINI, page_size=7) as server:
        yield server


@pytest.fixture
def make_session() -> Iterator[Callable[[FakeOrgServer], requests.Session]]:
    """Factory for extra client sessions (closed at teardown, so no ResourceWarning)."""
    made: list[requests.Session] = []

    def make(server: FakeOrgServer) -> requests.Session:
        made.append(client_session(server))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def session(fake: FakeOrgServer) -> Iterator[requests.Session]:
    s = client_session(fake)
    yield s
    s.close()


@pytest.fixture
def sf(fake: FakeOrgServer, session: requests.Session) -> Salesforce:
    return Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session, version="62.0")
