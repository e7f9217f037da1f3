"""Shared fixtures: a clean environment per test, the bundled demo org, a running fake org."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_ORG = REPO / "fixtures" / "orgs" / "demo"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No Salesforce credentials, CA overrides or sfbackup settings leak in from the machine."""
    for key in list(os.environ):
        if key.startswith(("SF_", "SFBACKUP_")) or key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SFBACKUP_HOME", str(home))
    return home


@pytest.fixture
def home(clean_env: Path) -> Path:
    return clean_env


@pytest.fixture(scope="session")
def demo_org() -> Path:
    return DEMO_ORG


@pytest.fixture(scope="session")
def fake_org(demo_org: Path) -> Iterator[object]:
    """The demo org served on 127.0.0.1 with small pages, so every object spans several pages."""
    from plugin.fakeorg import start_fake_org

    with start_fake_org(demo_org, page_size=250) as fake:
        yield fake


def sf_env(fake: object) -> dict[str, str]:
    info = fake.info()  # type: ignore[attr-defined]
    return {
        "SF_INSTANCE_URL": info["instance_url"],
        "SF_ACCESS_TOKEN": info["access_token"],
        "SFBACKUP_CA_BUNDLE": info["ca_bundle"],
    }
