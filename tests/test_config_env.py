"""Connection settings that cannot work are refused when a backup is requested, naming the variable,
not recorded as a job that then fails (retryable) in its worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.config import ca_bundle, credentials_from_env
from plugin.errors import ConfigError
from plugin.jobs.options import validate_request
from plugin.jobs.runtime import JobRuntime

TOKEN = "00D000000000042!secret"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "https://bad host.my.salesforce.com",
        "https://acme.my.salesforce.com:port",
        "https://:443",
        "http://x",
    ],
)
def test_an_instance_url_that_is_no_https_host_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match=r"SF_INSTANCE_URL=.* is not an https URL like https://acme"):
        credentials_from_env({"SF_INSTANCE_URL": url, "SF_ACCESS_TOKEN": TOKEN})


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
        ("https://Acme--Dev.sandbox.my.salesforce.com", "https://Acme--Dev.sandbox.my.salesforce.com"),
    ],
)
def test_usable_instance_urls_are_kept(url: str, clean: str) -> None:
    assert credentials_from_env({"SF_INSTANCE_URL": url, "SF_ACCESS_TOKEN": TOKEN}).instance_url == clean


def test_a_missing_ca_bundle_is_refused_before_a_job_is_recorded(home: Path) -> None:
    env = {
        "SF_INSTANCE_URL": "https://example.my.salesforce.com",
        "SF_ACCESS_TOKEN": TOKEN,
        "SFBACKUP_CA_BUNDLE": str(home / "nope.pem"),
    }
    runtime = JobRuntime(home, env=env)
    try:
        with pytest.raises(ConfigError, match=r"SFBACKUP_CA_BUNDLE=.*nope\.pem is not a file"):
            runtime.start_backup(validate_request(home=home), actor="test", spawn=False)
        assert runtime.jobs(limit=5, offset=0)[1] == 0
    finally:
        runtime.close()


def test_credentials_follow_the_environment_as_it_changes() -> None:
    """The parse is remembered per set of values, so a changed variable is a changed answer."""
    env = {"SF_INSTANCE_URL": "https://a.my.salesforce.com", "SF_ACCESS_TOKEN": TOKEN}
    first = credentials_from_env(env)
    assert credentials_from_env(dict(env)) is first  # same values: the parse is made once
    env["SF_INSTANCE_URL"] = "https://b.my.salesforce.com"
    assert credentials_from_env(env).instance_url == "https://b.my.salesforce.com"
    env |= {"SF_ACCESS_TOKEN": " ", "SF_USERNAME": "ada@example.com", "SF_PASSWORD": "pw"}
    changed = credentials_from_env(env)
    assert (changed.kind, changed.username, changed.instance_url) == (
        "password",
        "ada@example.com",
        env["SF_INSTANCE_URL"],
    )
    with pytest.raises(ConfigError, match="No Salesforce credentials"):
        credentials_from_env({"SF_USERNAME": "ada@example.com"})


def test_a_ca_bundle_removed_after_a_request_is_refused_at_the_next(home: Path) -> None:
    bundle = home / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"SFBACKUP_CA_BUNDLE": str(bundle)}
    assert ca_bundle(env) == bundle
    bundle.unlink()
    with pytest.raises(ConfigError, match=r"SFBACKUP_CA_BUNDLE=.*ca\.pem is not a file"):
        ca_bundle(env)


def test_a_ca_bundle_under_the_home_folder_follows_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` is expanded by the HOME of the moment (the expansion is remembered per HOME)."""
    for user_home in (home / "a", home / "b"):
        user_home.mkdir()
        (user_home / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
        monkeypatch.setenv("HOME", str(user_home))
        assert ca_bundle({"SFBACKUP_CA_BUNDLE": "~/ca.pem"}) == user_home / "ca.pem"
