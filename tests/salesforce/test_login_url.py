"""The product's own connection code logs in to the fake in every auth mode through SF_LOGIN_URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.config import credentials_from_env
from plugin.errors import ConfigError
from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import SalesforceAuthError

MINI = Path(__file__).resolve().parents[1] / "fakeorg" / "orgs" / "mini"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOrgServer]:
    with start_fake_org(MINI, page_size=7) as server:
        yield server


def _env(fake: FakeOrgServer, mode: str) -> dict[str, str]:
    info = fake.info()
    modes = {
        "password": {"SF_USERNAME": info["username"], "SF_PASSWORD": info["password"],
                     "SF_SECURITY_TOKEN": info["security_token"]},
        "client_credentials": {"SF_CLIENT_ID": info["client_id"], "SF_CLIENT_SECRET": info["client_secret"],
                               "SF_DOMAIN": "acme.my"},
        "jwt": {"SF_CLIENT_ID": info["client_id"], "SF_USERNAME": info["username"],
                "SF_JWT_KEY_FILE": info["jwt_key_file"]},
    }  # fmt: skip
    return {"SF_LOGIN_URL": info["instance_url"], **modes[mode]}


def _client(fake: FakeOrgServer, env: dict[str, str]) -> OrgClient:
    return OrgClient(credentials_from_env(env), api_version="62.0", extra_ca=fake.ca_bundle)


@pytest.mark.parametrize("mode", ["password", "client_credentials", "jwt"])
def test_every_login_mode_reaches_the_fake_through_sf_login_url(fake: FakeOrgServer, mode: str) -> None:
    fake.reset()
    client = _client(fake, _env(fake, mode))
    try:
        assert client.credentials.kind == mode
        assert client.identity().org_id == fake.org_id
        assert client.instance_url == fake.instance_url
    finally:
        client.close()
    login_path = "/services/Soap/u/62.0" if mode == "password" else "/services/oauth2/token"
    first = fake.request_log[0]
    assert (first.method, first.path) == ("POST", login_path)
    # One query; the login is not an API call, for Salesforce nor for the manifest's count.
    assert fake.api_calls == client.api_calls == 1


def test_expired_session_mid_pagination_logs_in_again_and_resumes(fake: FakeOrgServer) -> None:
    fake.reset()
    client = _client(fake, _env(fake, "password"))
    try:
        fake.add_fault({"action": "expire_session", "path": r"/query/01g", "nth": 2})
        ids = [r["Id"] for r in client.query("SELECT Id FROM Account", object_name="Account", include_deleted=True)]
    finally:
        client.close()
    assert len(ids) == len(set(ids)) == 20
    logins = [e for e in fake.request_log if e.path == "/services/Soap/u/62.0"]
    assert len(logins) == 2 and fake.snapshot()["logins"] == 2
    statuses = [e.status for e in fake.request_log if "/query" in e.path]
    assert statuses == [200, 200, 401, 200]  # the same locator answers after the new login


def test_wrong_password_is_an_auth_error(fake: FakeOrgServer) -> None:
    env = {**_env(fake, "password"), "SF_PASSWORD": "wrong"}
    with pytest.raises(SalesforceAuthError, match=r"Salesforce refused the login \(INVALID_LOGIN: "):
        _client(fake, env)


@pytest.mark.parametrize("value", ["http://127.0.0.1:1", "https://login.example.com/services", "not a url"])
def test_sf_login_url_must_be_an_https_origin(value: str) -> None:
    env = {"SF_USERNAME": "u", "SF_PASSWORD": "p", "SF_LOGIN_URL": value}
    with pytest.raises(ConfigError, match=r"SF_LOGIN_URL=.* is not an https origin"):
        credentials_from_env(env)


def test_sf_login_url_is_kept_for_login_modes_only() -> None:
    assert credentials_from_env({"SF_USERNAME": "u", "SF_PASSWORD": "p"}).login_url is None
    env = {"SF_USERNAME": "u", "SF_PASSWORD": "p", "SF_LOGIN_URL": "https://127.0.0.1:8443/"}
    assert credentials_from_env(env).login_url == "https://127.0.0.1:8443"


def test_a_runtime_learns_the_org_id_of_login_credentials_once(fake: FakeOrgServer, home: Path) -> None:
    from plugin.jobs.options import validate_request
    from plugin.jobs.runtime import JobRuntime

    fake.reset()
    env = {**_env(fake, "password"), "SFBACKUP_CA_BUNDLE": str(fake.ca_bundle)}
    runtime = JobRuntime(home, env=env)
    try:
        for _ in range(3):
            start = runtime.request_backup(validate_request(home=home, backup_type="full"))
            assert start.job.org_id == fake.org_id
            runtime.cancel(start.job.job_id, reason="only the request is under test")
    finally:
        runtime.close()
    logins = [r for r in fake.request_log if r.path == "/services/Soap/u/62.0"]
    assert (len(logins), fake.api_calls) == (1, 1)  # one login and one Organization query for three jobs
