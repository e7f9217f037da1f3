"""Logins against the fake with unmodified simple-salesforce: SOAP, OAuth password, client
credentials, JWT bearer (a key the test generates, a certificate in org.json) and refresh token."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from plugin.fakeorg import FakeOrgError, FakeOrgServer

MINI = Path(__file__).parent / "orgs" / "mini"


@pytest.fixture
def login(fake: FakeOrgServer) -> Iterator[requests.Session]:
    fake.reset()
    with fake.client_session() as session:
        yield session


def _query_org(sf: Salesforce, fake: FakeOrgServer) -> None:
    assert sf.query("SELECT Id FROM Organization")["records"][0]["Id"] == fake.org_id


def test_soap_login_needs_the_security_token(fake: FakeOrgServer, login: requests.Session) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=fake.username, password=fake.password, security_token="", session=login)
    assert info.value.code == "LOGIN_MUST_USE_SECURITY_TOKEN"
    assert info.value.auth_message.startswith("Invalid username, password, security token; or user locked out.")
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username="nobody@x.test", password=fake.password, security_token=fake.security_token, session=login)
    assert (info.value.code, info.value.auth_message) == (
        "INVALID_LOGIN",
        "Invalid username, password, security token; or user locked out.",
    )
    sf = Salesforce(
        username=fake.username, password=fake.password, security_token=fake.security_token, session=login, domain="test"
    )
    _query_org(sf, fake)
    assert fake.snapshot()["logins"] == 1 and fake.api_calls == 1  # logins are not API calls


def test_oauth_password_grant(fake: FakeOrgServer, login: requests.Session) -> None:
    sf = Salesforce(
        username=fake.username,
        password=fake.password + fake.security_token,
        consumer_key=fake.credentials.client_id,
        consumer_secret=fake.credentials.client_secret,
        session=login,
    )
    _query_org(sf, fake)
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(
            username=fake.username,
            password="wrong",
            consumer_key=fake.credentials.client_id,
            consumer_secret=fake.credentials.client_secret,
            session=login,
        )
    assert (info.value.code, info.value.auth_message) == ("invalid_grant", "authentication failure")
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=fake.username, password="x", consumer_key="3MVGnope", consumer_secret="x", session=login)
    assert (info.value.code, info.value.auth_message) == ("invalid_client_id", "client identifier invalid")


def test_client_credentials_with_basic_auth_and_with_form_fields(fake: FakeOrgServer, login: requests.Session) -> None:
    creds = fake.credentials
    sf = Salesforce(consumer_key=creds.client_id, consumer_secret=creds.client_secret, domain="acme.my", session=login)
    assert sf.auth_type == "client-credentials"
    _query_org(sf, fake)
    form = {"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret}
    answer = login.post("https://acme.my.salesforce.com/services/oauth2/token", data=form).json()
    assert answer["instance_url"] == fake.instance_url and answer["token_type"] == "Bearer"
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(consumer_key=creds.client_id, consumer_secret="wrong", domain="acme.my", session=login)
    assert (info.value.code, info.value.auth_message) == ("invalid_client", "invalid client credentials")


def test_jwt_bearer_with_the_generated_key(fake: FakeOrgServer, login: requests.Session) -> None:
    sf = Salesforce(
        username=fake.username,
        consumer_key=fake.credentials.client_id,
        privatekey_file=fake.info()["jwt_key_file"],
        session=login,
    )
    assert sf.auth_type == "jwt-bearer"
    _query_org(sf, fake)


def _key_and_cert(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test connected app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "server.key", directory / "server.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_jwt_bearer_verifies_the_signature_with_the_configured_certificate(tmp_path: Path) -> None:
    org = shutil.copytree(MINI, tmp_path / "org")
    key_path, cert_path = _key_and_cert(tmp_path)
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    settings.update({"jwt_certificate": str(cert_path), "client_id": "3MVG9test"})
    (org / "org.json").write_text(json.dumps(settings), encoding="utf-8")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeOrgServer(org) as fake, fake.client_session() as session:
        sf = Salesforce(
            username="admin@mini.test", consumer_key="3MVG9test", privatekey_file=str(key_path), session=session
        )
        _query_org(sf, fake)
        with pytest.raises(SalesforceAuthenticationFailed) as info:
            Salesforce(username="admin@mini.test", consumer_key="3MVG9test", privatekey=stranger, session=session)
        assert (info.value.code, info.value.auth_message) == ("invalid_grant", "invalid assertion")
        claims = {"iss": "3MVG9test", "sub": "admin@mini.test", "aud": "https://login.salesforce.com"}
        pem = key_path.read_bytes()
        cases = {
            "audience is invalid": {**claims, "aud": "https://evil.example", "exp": int(time.time()) + 60},
            "expired authorization code": {**claims, "exp": int(time.time()) - 60},
        }
        for message, payload in cases.items():
            form = {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": jwt.encode(payload, pem, "RS256"),
            }
            answer = session.post("https://login.salesforce.com/services/oauth2/token", data=form)
            assert (answer.status_code, answer.json()) == (
                400,
                {"error": "invalid_grant", "error_description": message},
            )


def test_refresh_token_grant_and_unsupported_grants(fake: FakeOrgServer, login: requests.Session) -> None:
    creds = fake.credentials
    url = "https://login.salesforce.com/services/oauth2/token"
    form = {"grant_type": "refresh_token", "client_id": creds.client_id, "refresh_token": creds.refresh_token}
    answer = login.post(url, data=form)
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert token.startswith(fake.org_id[:15] + "!")
    sf = Salesforce(instance_url=fake.instance_url, session_id=token, session=login)
    _query_org(sf, fake)
    assert login.post(url, data={**form, "refresh_token": "5Aepnope"}).json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert login.post(url, data={"grant_type": "authorization_code"}).json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


def test_jwt_certificate_that_is_not_pem_is_a_clear_error(tmp_path: Path) -> None:
    org = shutil.copytree(MINI, tmp_path / "org")
    (tmp_path / "bad.pem").write_text("not a certificate", encoding="utf-8")
    (org / "org.json").write_text(json.dumps({"jwt_certificate": str(tmp_path / "bad.pem")}), encoding="utf-8")
    with pytest.raises(FakeOrgError, match="is not a PEM certificate or public key"):
        FakeOrgServer(org)
