"""Every host configuration file in the repository: its shape matches the host's format, it holds no
secret, and the server it describes really starts (placeholders filled with a tmp home and the fake
org) and runs a backup through a real MCP client."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO
from tests.hosts.conftest import (
    OUR_TOOLS,
    SECRET_KEYS,
    base_env,
    claude_code_expand,
    fake_org_values,
    load,
    start_and_back_up,
)

pytestmark = pytest.mark.e2e
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
REFERENCE = re.compile(r"^\$\{[^}]+\}$")
PLACEHOLDER = re.compile(r"^<[^>]+>$")


def assert_no_secret_inline(env: dict[str, str]) -> None:
    for key in SECRET_KEYS & set(env):
        assert REFERENCE.match(env[key]) or PLACEHOLDER.match(env[key]), f"{key} holds a literal value"


def completed(run: dict[str, Any]) -> None:
    assert run["tools"] == OUR_TOOLS
    assert run["job"]["status"] == "completed", run["job"]
    assert run["job"]["records"] == 300


# -- Claude Desktop ------------------------------------------------------------------------------

DESKTOP = "hosts/claude-desktop/claude_desktop_config.json"


def test_claude_desktop_config_has_the_mcp_servers_shape_and_placeholders() -> None:
    config = load(DESKTOP)
    assert set(config) == {"mcpServers"}
    server = config["mcpServers"]["sfbackup"]
    assert set(server) == {"command", "args", "env"}
    assert Path(server["command"]).is_absolute()  # Claude Desktop's PATH is minimal: name the binary
    assert server["args"] == ["serve"]
    assert set(server["env"]) == {"SFBACKUP_HOME", "SF_INSTANCE_URL", "SF_ACCESS_TOKEN"}
    assert_no_secret_inline(server["env"])


def test_claude_desktop_config_starts_the_server(fake_org: Any, tmp_path: Path) -> None:
    server = load(DESKTOP)["mcpServers"]["sfbackup"]
    values = fake_org_values(fake_org, tmp_path / "home")
    filled = {
        "/ABSOLUTE/PATH/TO/sfbackup/.venv/bin": str(Path(sys.executable).parent),
        "/ABSOLUTE/PATH/FOR/sfbackup-data": values["SFBACKUP_HOME"],
        "https://YOUR-DOMAIN.my.salesforce.com": values["SF_INSTANCE_URL"],
        server["env"]["SF_ACCESS_TOKEN"]: values["SF_ACCESS_TOKEN"],
    }

    def fill(text: str) -> str:
        for placeholder, value in filled.items():
            text = text.replace(placeholder, value)
        return text

    env = {**base_env(), **{k: fill(v) for k, v in server["env"].items()}}
    env["SFBACKUP_CA_BUNDLE"] = values["SFBACKUP_CA_BUNDLE"]  # only the fake org's CA needs this
    completed(start_and_back_up(fill(server["command"]), server["args"], env, tmp_path / "stderr.log"))
    assert (tmp_path / "home" / "events.db").is_file()


# -- Claude Code plugin --------------------------------------------------------------------------


def test_claude_code_plugin_manifest_is_valid_and_versioned_with_the_package() -> None:
    manifest = load(".claude-plugin/plugin.json")
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", manifest["name"])
    assert manifest["version"] == VERSION
    assert manifest["description"] and manifest["author"]["name"]
    assert "mcpServers" not in manifest  # the servers live in .mcp.json at the plugin root
    assert not (REPO / ".claude-plugin" / ".mcp.json").exists()


def test_claude_code_mcp_json_passes_every_setting_from_the_environment() -> None:
    config = load(".mcp.json")
    assert set(config) == {"mcpServers"}
    server = config["mcpServers"]["sfbackup"]
    assert server["command"] == "uv"
    assert "${CLAUDE_PLUGIN_ROOT}" in server["args"]
    for key, value in server["env"].items():
        assert value == f"${{{key}:-}}", key  # passed through; unset stays empty, never a literal
    assert {"SFBACKUP_HOME", "SF_INSTANCE_URL", "SF_ACCESS_TOKEN", "SF_PASSWORD", "SF_CLIENT_SECRET"} <= set(
        server["env"]
    )
    assert_no_secret_inline(server["env"])


def test_claude_code_plugin_starts_the_server_from_its_install_folder(
    fake_org: Any, plugin_root: Path, tmp_path: Path
) -> None:
    server = load(".mcp.json")["mcpServers"]["sfbackup"]
    shell = {**base_env(), **fake_org_values(fake_org, tmp_path / "home"), "CLAUDE_PLUGIN_ROOT": str(plugin_root)}
    args = [claude_code_expand(a, shell) for a in server["args"]]
    env = {**base_env(), **{k: claude_code_expand(v, shell) for k, v in server["env"].items()}}
    completed(start_and_back_up(server["command"], args, env, tmp_path / "stderr.log"))
    assert (plugin_root / ".venv").is_dir()  # uv built the plugin's own environment


# -- VS Code -------------------------------------------------------------------------------------


def test_vscode_mcp_json_uses_servers_and_prompts_for_the_token() -> None:
    config = load(".vscode/mcp.json")
    assert set(config) == {"inputs", "servers"}  # VS Code's key is "servers", not "mcpServers"
    inputs = {i["id"]: i for i in config["inputs"]}
    server = config["servers"]["sfbackup"]
    assert server["type"] == "stdio" and server["args"] == ["serve"]
    used = {m for v in server["env"].values() for m in re.findall(r"\$\{input:([^}]+)\}", v)}
    assert used == set(inputs)
    assert inputs[re.findall(r"input:([^}]+)", server["env"]["SF_ACCESS_TOKEN"])[0]]["password"] is True
    assert_no_secret_inline(server["env"])


def test_vscode_config_starts_the_server(fake_org: Any, tmp_path: Path) -> None:
    server = load(".vscode/mcp.json")["servers"]["sfbackup"]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".venv").symlink_to(Path(sys.prefix))  # the developer's `python -m venv .venv`
    values = fake_org_values(fake_org, tmp_path / "home")
    variables = {
        "workspaceFolder": str(workspace),
        "userHome": str(tmp_path),
        "input:sf-instance-url": values["SF_INSTANCE_URL"],
        "input:sf-access-token": values["SF_ACCESS_TOKEN"],
    }

    def fill(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: variables[m.group(1)], text)

    env = {**base_env(), **{k: fill(v) for k, v in server["env"].items()}}
    env["SFBACKUP_CA_BUNDLE"] = values["SFBACKUP_CA_BUNDLE"]
    completed(start_and_back_up(fill(server["command"]), server["args"], env, tmp_path / "stderr.log"))
    assert (tmp_path / "sfbackup" / "events.db").is_file()  # ${userHome}/sfbackup


# -- MCP Bundle ----------------------------------------------------------------------------------


def test_mcpb_manifest_matches_the_v0_4_schema_and_the_server(home: Path) -> None:
    from tests.mcp.test_tools import list_tools

    manifest = load("manifest.json")
    schema = load("fixtures/hosts/mcpb-manifest-v0.4.schema.json")
    jsonschema.validate(manifest, schema)
    assert manifest["manifest_version"] == "0.4" and manifest["version"] == VERSION
    tools = list_tools(home, "legacy")
    assert {t["name"] for t in manifest["tools"]} == set(tools)
    for entry in manifest["tools"]:
        assert tools[entry["name"]].description.startswith(entry["description"]), entry["name"]
    config = manifest["user_config"]
    assert config["access_token"]["sensitive"] is True
    env = manifest["server"]["mcp_config"]["env"]
    referenced = {m for v in env.values() for m in re.findall(r"\$\{user_config\.([^}]+)\}", v)}
    assert referenced == set(config)
    assert_no_secret_inline(env)


def mcpb_fill(text: str, dirname: Path, user_config: dict[str, str], home: Path) -> str:
    """The host's substitutions: ${__dirname}, ${user_config.KEY}, ${HOME}."""
    text = text.replace("${__dirname}", str(dirname)).replace("${HOME}", str(home))
    return re.sub(r"\$\{user_config\.([^}]+)\}", lambda m: user_config[m.group(1)], text)


def test_mcpb_manifest_starts_the_server_with_the_default_backup_folder(
    fake_org: Any, plugin_root: Path, tmp_path: Path
) -> None:
    run = start_bundle(load("manifest.json"), plugin_root, fake_org, tmp_path)
    completed(run)
    assert (tmp_path / "sfbackup" / "events.db").is_file()  # the default ${HOME}/sfbackup


def start_bundle(manifest: dict[str, Any], dirname: Path, fake: Any, tmp_path: Path) -> dict[str, Any]:
    values = fake_org_values(fake, tmp_path / "unused")
    config = manifest["user_config"]
    user_config = {
        "instance_url": values["SF_INSTANCE_URL"],
        "access_token": values["SF_ACCESS_TOKEN"],
        "backup_folder": mcpb_fill(config["backup_folder"]["default"], dirname, {}, tmp_path),
    }
    mcp_config = manifest["server"]["mcp_config"]
    env = {**base_env(), **{k: mcpb_fill(v, dirname, user_config, tmp_path) for k, v in mcp_config["env"].items()}}
    env["SFBACKUP_CA_BUNDLE"] = values["SFBACKUP_CA_BUNDLE"]
    args = [mcpb_fill(a, dirname, user_config, tmp_path) for a in mcp_config["args"]]
    return start_and_back_up(mcp_config["command"], args, env, tmp_path / "stderr.log")
