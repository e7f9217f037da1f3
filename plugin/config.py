"""Settings read from the environment (the contract in DESIGN.md), in one place.

Secrets live only in ``Credentials`` objects, whose ``repr`` hides them, and are never written to
events, manifests, logs or tool answers.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import platformdirs

from plugin.errors import ConfigError

DEFAULT_API_VERSION = "62.0"
AuthKind = Literal["session", "password", "client_credentials", "jwt"]

MISSING_CREDENTIALS = (
    "No Salesforce credentials in the environment of the sfbackup server. Set one of: "
    "SF_INSTANCE_URL + SF_ACCESS_TOKEN (a session); SF_USERNAME + SF_PASSWORD [+ SF_SECURITY_TOKEN] "
    "[+ SF_DOMAIN]; SF_CLIENT_ID + SF_CLIENT_SECRET + SF_DOMAIN (client credentials); "
    "SF_CLIENT_ID + SF_USERNAME + SF_JWT_KEY_FILE (JWT bearer). In a host's config these go "
    'under "env" of the server entry; then restart the server.'
)


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``events.db`` and ``backups/`` live: ``SFBACKUP_HOME`` or the user data dir."""
    env = os.environ if env is None else env
    raw = env.get("SFBACKUP_HOME")
    if raw:
        return Path(raw).expanduser().resolve()
    return Path(platformdirs.user_data_dir("sfbackup", appauthor=False)).resolve()


def events_path(home: Path) -> Path:
    return home / "events.db"


def api_version(env: Mapping[str, str] | None = None) -> str:
    """``SF_API_VERSION`` as ``NN.N`` (a leading ``v`` is accepted and dropped)."""
    env = os.environ if env is None else env
    raw = (env.get("SF_API_VERSION") or DEFAULT_API_VERSION).strip().lstrip("vV")
    parts = raw.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"SF_API_VERSION={raw!r} is not an API version like 62.0; fix or unset it.")
    return raw


def ca_bundle(env: Mapping[str, str] | None = None) -> Path | None:
    """``SFBACKUP_CA_BUNDLE``: an extra CA to trust besides the public ones (the fake org's)."""
    named = ca_bundle_named(env)
    return None if named is None else require_ca_bundle(*named)


def ca_bundle_named(env: Mapping[str, str] | None = None) -> tuple[str, Path] | None:
    """``SFBACKUP_CA_BUNDLE`` as given and as a path (``~`` expanded), not checked: ``require_ca_bundle``."""
    env = os.environ if env is None else env
    raw = env.get("SFBACKUP_CA_BUNDLE")
    return (raw, _expanded(raw, os.environ.get("HOME"))) if raw else None


def require_ca_bundle(raw: str, path: Path) -> Path:
    """``path`` if it is a file (checked at every call: the file may have gone since)."""
    if not os.path.isfile(path):
        raise ConfigError(f"SFBACKUP_CA_BUNDLE={raw} is not a file; point it at a PEM CA certificate.")
    return path


@functools.lru_cache(maxsize=16)
def _expanded(raw: str, home: str | None) -> Path:
    """``raw`` with ``~`` expanded (by ``home``, what expanduser reads): a request asks every time."""
    return Path(raw).expanduser()


@dataclass(frozen=True)
class Credentials:
    """How to reach one org. ``repr`` never shows a secret."""

    kind: AuthKind
    instance_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    domain: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    jwt_key_file: str | None = None
    login_url: str | None = None

    @property
    def secrets(self) -> list[str]:
        """Values that must never be written anywhere (used by redaction and tests)."""
        return [s for s in (self.access_token, self.password, self.security_token, self.client_secret) if s]

    @property
    def can_relogin(self) -> bool:
        return self.kind != "session"

    def describe(self) -> str:
        """A secret-free one-liner for logs and answers."""
        who = self.username or self.client_id or "session"
        where = self.instance_url or self.login_url or self.domain or "login"
        return f"{self.kind} auth as {who} at {where}"


# A DNS name (labels of letters, digits, inner hyphens) or an IPv6 literal (urlsplit drops its brackets).
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f:.]*:[0-9a-f:.]*")


def _clean_instance_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url if "://" in url else f"https://{url}")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number: urllib raises only when asked
        port_ok = False
    if parts.scheme != "https" or not _HOST.fullmatch(parts.hostname or "") or not port_ok:
        raise ConfigError(f"SF_INSTANCE_URL={raw!r} is not an https URL like https://acme.my.salesforce.com; fix it.")
    return f"https://{parts.netloc}"


def _clean_login_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ConfigError(
            f"SF_LOGIN_URL={raw!r} is not an https origin like https://127.0.0.1:8443 (no path); "
            "it replaces https://<SF_DOMAIN>.salesforce.com for logins. Fix or unset it."
        )
    return f"https://{parts.netloc}"


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials:
    """Pick the first complete credential set, in the order DESIGN.md fixes.

    Raises:
        ConfigError: no complete set, with the list of what to set.
    """
    env = os.environ if env is None else env
    return _credentials_of(tuple(env.get(name, "") for name in CREDENTIAL_VARIABLES))


# Every variable ``credentials_from_env`` reads: what its answer depends on, and nothing else.
CREDENTIAL_VARIABLES = (
    "SF_LOGIN_URL",
    "SF_INSTANCE_URL",
    "SF_ACCESS_TOKEN",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_SECURITY_TOKEN",
    "SF_DOMAIN",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_JWT_KEY_FILE",
)


@functools.lru_cache(maxsize=16)  # each backup request reads them: the parse is made once per set of values
def _credentials_of(values: tuple[str, ...]) -> Credentials:
    given = dict(zip(CREDENTIAL_VARIABLES, values, strict=True))

    def get(name: str) -> str | None:
        value = given[name].strip()
        return value or None

    login_url = _clean_login_url(get("SF_LOGIN_URL") or "") if get("SF_LOGIN_URL") else None

    if get("SF_INSTANCE_URL") and get("SF_ACCESS_TOKEN"):
        return Credentials(
            kind="session",
            instance_url=_clean_instance_url(get("SF_INSTANCE_URL") or ""),
            access_token=get("SF_ACCESS_TOKEN"),
        )
    if get("SF_USERNAME") and get("SF_PASSWORD"):
        return Credentials(
            kind="password",
            username=get("SF_USERNAME"),
            password=get("SF_PASSWORD"),
            security_token=get("SF_SECURITY_TOKEN") or "",
            domain=get("SF_DOMAIN") or "login",
            instance_url=_clean_instance_url(get("SF_INSTANCE_URL") or "") if get("SF_INSTANCE_URL") else None,
            login_url=login_url,
        )
    if get("SF_CLIENT_ID") and get("SF_CLIENT_SECRET") and get("SF_DOMAIN"):
        return Credentials(
            kind="client_credentials",
            client_id=get("SF_CLIENT_ID"),
            client_secret=get("SF_CLIENT_SECRET"),
            domain=get("SF_DOMAIN"),
            login_url=login_url,
        )
    if get("SF_CLIENT_ID") and get("SF_USERNAME") and get("SF_JWT_KEY_FILE"):
        return Credentials(
            kind="jwt",
            client_id=get("SF_CLIENT_ID"),
            username=get("SF_USERNAME"),
            jwt_key_file=get("SF_JWT_KEY_FILE"),
            domain=get("SF_DOMAIN") or "login",
            login_url=login_url,
        )
    raise ConfigError(MISSING_CREDENTIALS)


@dataclass(frozen=True)
class ExportSettings:
    """Tuning of the record export (README "Export tuning"); defaults suit a production org."""

    bulk_threshold: int = 10_000  # objects with at least this many records go through Bulk API 2.0
    bulk_poll_timeout: float = 1800.0  # seconds a Bulk job may stay unfinished before it counts as stuck
    api_reserve: float = 0.10  # share of the org's daily API requests the backup never uses


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float | None,
    *,
    low: float,
    high: float = math.inf,
    whole: bool = False,
    what: str,
) -> float | None:
    """``name``'s value as a finite number in [low, high] (a whole one if ``whole``), ``default`` if unset.

    Raises:
        ConfigError: naming the variable and what it accepts (``what``).
    """
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high or (whole and value != int(value)):
        raise ConfigError(f"{name}={raw!r} is not {what}; fix or unset it.")
    return value


def export_settings(env: Mapping[str, str] | None = None) -> ExportSettings:
    """``SFBACKUP_BULK_THRESHOLD`` (records, default 10000; 0 = Bulk for every object Bulk supports),
    ``SFBACKUP_BULK_POLL_TIMEOUT`` (seconds, default 1800), ``SFBACKUP_API_RESERVE`` (percent of the
    daily API limit left untouched, default 10; 0 = none).

    Raises:
        ConfigError: a value is not a number in its range.
    """
    env = os.environ if env is None else env
    threshold = env_number(
        env,
        "SFBACKUP_BULK_THRESHOLD",
        10_000,
        low=0,
        high=1e12,
        whole=True,
        what="a whole number of records (e.g. 10000)",
    )
    timeout = env_number(env, "SFBACKUP_BULK_POLL_TIMEOUT", 1800.0, low=0.1, high=7 * 86400, what="seconds (e.g. 1800)")
    reserve = env_number(env, "SFBACKUP_API_RESERVE", 10.0, low=0, high=90, what="a percentage from 0 to 90")
    assert threshold is not None and timeout is not None and reserve is not None
    return ExportSettings(bulk_threshold=int(threshold), bulk_poll_timeout=timeout, api_reserve=reserve / 100)
