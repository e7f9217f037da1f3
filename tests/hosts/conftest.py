"""Host configuration files: their locations, the placeholders hosts fill in, and a server started
exactly from the command, args and env a file gives (as the host would start it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import REPO, sf_env
from tests.support.contract import TOOL_NAMES

SECRET_KEYS = {"SF_ACCESS_TOKEN", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_CLIENT_SECRET"}
OUR_TOOLS = set(TOOL_NAMES)
# What a plugin or bundle install holds: the distribution's sources (no tests, fixtures or venv).
SHIPPED = [
    "pyproject.toml",
    "README.md",
    "plugin",
    "events",
    "projections",
    ".claude-plugin",
    ".mcp.json",
    "manifest.json",
]


def load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / relative).read_text(encoding="utf-8"))
    return data


def expand(value: str, pattern: str, lookup: Callable[[re.Match[str]], str]) -> str:
    return re.sub(pattern, lookup, value)


def claude_code_expand(value: str, env: Mapping[str, str]) -> str:
    """Claude Code's documented .mcp.json expansion: ``${VAR}`` (must be set) and ``${VAR:-default}``."""

    def one(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3)
        if name in env:
            return env[name]
        if default is None:
            raise AssertionError(f"${{{name}}} is not set and has no default: Claude Code would refuse the file")
        return default

    return expand(value, r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", one)


def installed_copy(tmp: Path) -> Path:
    """The repository as a plugin/bundle install holds it (a copy, so ``uv`` writes only there)."""
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, tmp / name)
    return tmp


@pytest.fixture(scope="module")
def plugin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_copy(tmp_path_factory.mktemp("installed"))


# The machine's network settings pass through as a host started from the user's session passes them:
# `uv` must reach the package index the way every other tool on this machine does.
MACHINE_NETWORK = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "UV_INDEX_URL")


def base_env() -> dict[str, str]:
    """What a host adds on its own: PATH (with this venv's ``uv`` and ``sfbackup``), HOME, network settings."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root")}
    env.update({k: v for k in MACHINE_NETWORK if (v := os.environ.get(k) or os.environ.get(k.lower()))})
    return env


def fake_org_values(fake: Any, home: Path) -> dict[str, str]:
    """The values a user would fill in, pointing at the fake org and a fresh home."""
    return {**sf_env(fake), "SFBACKUP_HOME": str(home)}


def start_and_back_up(command: str, args: list[str], env: dict[str, str], errlog_path: Path) -> dict[str, Any]:
    """Start the server as the host would, list its tools, and run one small backup to completion."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command, args=args, env=env)

    async def go() -> dict[str, Any]:
        with open(errlog_path, "w", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                start = await client.call_tool(
                    "salesforce_backup", {"backup_type": "full", "objects_filter": ["Custom__c"]}
                )
                assert not start.is_error, start.content
                job_id = start.structured_content["job_id"]
                with anyio.fail_after(120):
                    while True:
                        status = await client.call_tool("salesforce_backup_status", {"job_id": job_id})
                        job = status.structured_content["job"]
                        if job["status"] not in ("requested", "running"):
                            break
                        await anyio.sleep(0.2)
                return {"tools": tools, "job": job}

    try:
        return anyio.run(go)
    except BaseException as e:
        log = errlog_path.read_text(encoding="utf-8") if errlog_path.exists() else ""
        raise AssertionError(f"server from the config failed: {e!r}\n{log[-3000:]}") from e
