"""Connection settings that cannot work are refused when a backup is requested, naming the variable,
not recorded as a job that then fails (retryable) in its worker."""

from __future__ import annotations

import pytest

from plugin.config import credentials_from_env
from plugin.errors import ConfigError

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
