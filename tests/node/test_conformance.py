"""The official MCP conformance suite (npm @modelcontextprotocol/conformance 0.1.16) against
`sfbackup serve --http`: every scenario passes except those in fixtures/conformance/expected-failures.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.node_tools import needs_node, run_tool
from tests.support.processes import http_server

pytestmark = [*needs_node, pytest.mark.e2e]
BASELINE = REPO / "fixtures" / "conformance" / "expected-failures.yml"


def baseline() -> set[str]:
    lines = BASELINE.read_text(encoding="utf-8").splitlines()
    return {line.split("#")[0].strip()[2:].strip() for line in lines if line.strip().startswith("- ")}


def test_every_applicable_scenario_passes_and_only_fixture_scenarios_are_expected_to_fail(tmp_path: Path) -> None:
    out = tmp_path / "results"
    with http_server(tmp_path / "home") as url:
        result = run_tool("conformance", "server", "--url", url, "--expected-failures", str(BASELINE), "-o", str(out))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    outcomes: dict[str, bool] = {}
    for checks in out.glob("server-*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks.parent.name.removeprefix("server-"))
        outcomes[scenario] = all(c["status"] in ("SUCCESS", "INFO") for c in json.loads(checks.read_text()))
    failed = {s for s, ok in outcomes.items() if not ok}
    assert failed == baseline()
    assert {
        "server-initialize",
        "ping",
        "tools-list",
        "tools-call-error",
        "server-sse-multiple-streams",
        "resources-list",
        "resources-subscribe",
        "resources-unsubscribe",
        "dns-rebinding-protection",
    } <= {s for s, ok in outcomes.items() if ok}
