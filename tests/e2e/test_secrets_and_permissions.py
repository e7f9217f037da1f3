"""A real backup over stdio with known secrets in the server's environment: none of them appears in
any log line, event, manifest, backup file or tool answer, and everything written is owner-only.

Session auth (token) is what reaches the fake org today; the password, security token, client secret
and JWT private key are seeded as environment variables (and a key file) so that any leak of the
environment or of credential objects into logs, events or answers would be caught.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import sf_env
from tests.e2e.test_backup_over_mcp import TERMINAL, call

pytestmark = pytest.mark.e2e

PRIVATE_KEY_LINE = "MIIEvSEEDEDjwtPRIVATEkeyLINEdoNotLeak0123456789abcdefABCDEF"
SEEDED = {
    "SF_PASSWORD": "pw-SEEDED-hunter2-Zq81",
    "SF_SECURITY_TOKEN": "st-SEEDED-R7pLmQ2vX9",
    "SF_CLIENT_SECRET": "cs-SEEDED-4f1d8a0b77e2",
}


def secrets_of(env: dict[str, str]) -> dict[str, str]:
    token = env["SF_ACCESS_TOKEN"]
    return {
        "access token": token,
        "access token secret part": token.split("!", 1)[1],
        **{name: env[name] for name in SEEDED},
        "private key": PRIVATE_KEY_LINE,
    }


async def backup_over_stdio(env: dict[str, str], stderr: Path) -> list[str]:
    """Run a full backup through every tool and resource; return every answer as text."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    answers: list[str] = []
    params = StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=env)

    def keep(result: Any) -> None:
        answers.append(" ".join(getattr(b, "text", "") for b in result.content))
        answers.append(json.dumps(result.structured_content))

    with open(stderr, "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            start = await call(client, "salesforce_backup", {"backup_type": "full"})
            answers.append(json.dumps(start))
            with anyio.fail_after(240):
                while True:
                    status = await call(client, "salesforce_backup_status", {"job_id": start["job_id"]})
                    if status["job"]["status"] in TERMINAL:
                        break
                    await anyio.sleep(0.2)
            assert status["job"]["status"] == "completed", status
            for name, args in [
                ("salesforce_backup_status", {"job_id": start["job_id"]}),
                ("salesforce_backup_status", {}),
                ("salesforce_backup_list", {}),
                ("salesforce_backup", {"objects_filter": ["Bad Name"]}),
                ("salesforce_backup_status", {"job_id": "nope"}),
            ]:
                keep(await client.call_tool(name, args))
            for uri in ("backup://jobs", start["resource_uri"]):
                resource = await client.read_resource(uri)
                answers.extend(getattr(c, "text", "") for c in resource.contents)
    return answers


@pytest.fixture(scope="module")
def secret_run(fake_org: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("secrets")
    home = base / "sfbackup-home"  # created by sfbackup itself, so its mode is sfbackup's doing
    key_file = base / "jwt.key"
    key_file.write_text(f"-----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY_LINE}\n-----END PRIVATE KEY-----\n")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")},
        **sf_env(fake_org),
        **SEEDED,
        "SF_USERNAME": "admin@seeded.example",
        "SF_CLIENT_ID": "3MVG9SEEDEDclientid",
        "SF_JWT_KEY_FILE": str(key_file),
        "SFBACKUP_HOME": str(home),
        "SFBACKUP_LOG_LEVEL": "DEBUG",  # the most talkative logs are the ones to check
    }
    stderr = base / "serve.stderr.log"
    answers = anyio.run(backup_over_stdio, env, stderr)
    yield {"home": home, "env": env, "answers": answers, "stderr": stderr}


def test_the_backup_ran_with_session_auth_and_debug_logs(secret_run: dict[str, Any]) -> None:
    home: Path = secret_run["home"]
    assert list((home / "backups").glob("*/*/manifest.json"))
    assert [p.stat().st_size > 0 for p in (home / "logs").glob("*.log")] == [True]


def test_no_secret_appears_in_answers_logs_events_manifests_or_backup_files(secret_run: dict[str, Any]) -> None:
    from events import EventLog

    home: Path = secret_run["home"]
    secrets = secrets_of(secret_run["env"])
    places: dict[str, bytes] = {f"answer {i}": a.encode() for i, a in enumerate(secret_run["answers"])}
    places["server stderr"] = secret_run["stderr"].read_bytes()
    for path in sorted(home.rglob("*")):
        if path.is_file():
            places[str(path.relative_to(home))] = path.read_bytes()
    with EventLog.open(home / "events.db", readonly=True) as log:
        for event in log.read_all(after=0):
            places[f"event {event.position} {event.type}"] = json.dumps([event.data, event.metadata]).encode()
    assert any(name.startswith("event") for name in places) and any("manifest.json" in n for n in places)
    leaks = [
        (what, where) for what, value in secrets.items() for where, blob in places.items() if value.encode() in blob
    ]
    assert leaks == []


def test_every_file_is_0600_and_every_folder_0700(secret_run: dict[str, Any]) -> None:
    home: Path = secret_run["home"]
    modes = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        modes[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    assert {"events.db", "logs", "backups"} <= set(modes)
    wrong = {name: oct(mode) for name, mode in modes.items() if mode != (0o700 if (home / name).is_dir() else 0o600)}
    assert wrong == {}
    assert sum(1 for p in home.rglob("*") if p.is_file()) > 20  # data, describes, files, manifest, log, db
