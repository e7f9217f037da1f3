"""A Salesforce that cannot be reached is a retryable failure that says which setting to check."""

from __future__ import annotations

import socket

import pytest

from plugin.config import Credentials
from plugin.salesforce.client import OrgClient
from plugin.salesforce.connect import RetryPolicy
from plugin.salesforce.errors import SalesforceNetworkError


def test_a_refused_connection_names_the_instance_url_to_check() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        creds = Credentials(kind="session", instance_url=f"https://127.0.0.1:{port}", access_token="00D!x")
        client = OrgClient(creds, api_version="62.0", retry=RetryPolicy(attempts=1))
        try:
            with pytest.raises(SalesforceNetworkError) as caught:
                client.identity()
        finally:
            client.close()
    assert caught.value.code == "NETWORK_ERROR" and caught.value.retryable
    assert "Could not connect to Salesforce" in str(caught.value) and "SF_INSTANCE_URL" in str(caught.value)
