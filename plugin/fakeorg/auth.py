"""Who may log in to the fake org and with what: the one user's password and security token, the
connected app (client id/secret, refresh token, JWT signing certificates), and the SOAP login.

The JWT key pair is generated once per process (RSA keygen costs ~0.15 s) and written into each
server's temp folder, so a client can sign assertions with `jwt_key_file` from the JSON line.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request

from . import soap
from .errors import FakeOrgError
from .ids import sf_id
from .state import ServerState

_MUST_USE_TOKEN = (
    "Invalid username, password, security token; or user locked out. Are you at a new location? When "
    "accessing Salesforce--either via a desktop client or the API--from outside of your company's trusted "
    "networks, you must add a security token to your password to log in. To get your new security token, "
    "log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find box, "
    "then select Reset My Security Token."
)

_KEY_ALPHABET = string.ascii_letters + string.digits + "._"


@dataclass(frozen=True)
class Credentials:
    """What logins must present: the user (SOAP and OAuth password grant) and the connected app."""

    username: str
    password: str
    security_token: str
    user_id: str = sf_id("005", 1)
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    jwt_keys: tuple[PublicKeyTypes, ...] = field(default=(), repr=False)

    def password_matches(self, given: str) -> bool:
        """Salesforce wants password + security token from untrusted networks (every caller here)."""
        return secrets.compare_digest(given, self.password + self.security_token)


@dataclass(frozen=True)
class JwtFiles:
    """The generated signing key (for clients) and its self-signed certificate (the app's)."""

    key_path: Path
    cert_path: Path


@functools.cache
def _process_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_jwt_files(directory: Path) -> JwtFiles:
    """Write the process's RSA key (PKCS8 PEM) and a self-signed certificate for it."""
    key = _process_key()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfbackup fake org connected app")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    files = JwtFiles(directory / "jwt_key.pem", directory / "jwt_cert.pem")
    files.key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key_path.chmod(0o600)
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def process_public_key() -> PublicKeyTypes:
    """The public half of the generated JWT key (always accepted)."""
    return _process_key().public_key()


def load_public_key(path: Path) -> PublicKeyTypes:
    """A PEM certificate (as uploaded to a connected app) or PEM public key.

    Raises:
        FakeOrgError: the file is missing or holds neither.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FakeOrgError(
            f"JWT certificate {path} cannot be read ({exc}); point jwt_certificate at a PEM file"
        ) from exc
    try:
        if b"BEGIN CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise FakeOrgError(f"{path} is not a PEM certificate or public key ({exc})") from exc


def generated_client_id() -> str:
    """A consumer key shaped like Salesforce's (`3MVG9` + 80 letters, digits, `.` and `_`)."""
    return "3MVG9" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(80))


def generated_client_secret() -> str:
    return secrets.token_hex(32).upper()


def soap_login(
    body: bytes, *, creds: Credentials, state: ServerState, instance_url: str, version: str, org_id: str
) -> soap.LoginAnswer:
    """Answer a Partner SOAP login: a session on the fake, or the fault Salesforce sends."""
    given = soap.parse_login(body)
    if given is None:
        return soap.login_fault("INVALID_LOGIN", "Invalid login request")
    username, password = given
    if username != creds.username:
        return soap.login_fault()
    if not creds.password_matches(password):
        if secrets.compare_digest(password, creds.password) and creds.security_token:
            return soap.login_fault("LOGIN_MUST_USE_SECURITY_TOKEN", _MUST_USE_TOKEN)
        return soap.login_fault()
    state.count_login()
    return soap.login_success(
        instance_url=instance_url,
        version=version,
        session_id=state.issue_token(),
        org_id=org_id,
        user_id=creds.user_id,
        username=creds.username,
    )


def settings_credentials(settings: dict[str, Any], *, root: Path) -> dict[str, Any]:
    """Connected-app settings from org.json (`client_id`, `client_secret`, `jwt_certificate`)."""
    keys: list[PublicKeyTypes] = [process_public_key()]
    cert = settings.get("jwt_certificate")
    if cert:
        path = Path(str(cert))
        keys.append(load_public_key(path if path.is_absolute() else root / path))
    return {
        "client_id": str(settings.get("client_id") or generated_client_id()),
        "client_secret": str(settings.get("client_secret") or generated_client_secret()),
        "refresh_token": f"5Aep{secrets.token_urlsafe(60)}",
        "jwt_keys": tuple(keys),
    }


def bearer_token(request: Request) -> str:
    """The session id a request presents (`Authorization: Bearer|OAuth`, or Bulk v1's header)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth"):
        return token.strip()
    return request.headers.get("X-SFDC-Session", "")
