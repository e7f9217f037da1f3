"""Every tool argument fuzzed through a real MCP client (both eras): clear ``isError`` answers, never a
crash, a traceback or an echo of a huge argument, and nothing recorded unless the request was valid.

No credentials are set, so a request that passes validation ends in the "No Salesforce credentials"
answer: that is how the tests see that validation let it through (and nothing could be started).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from plugin.config import MISSING_CREDENTIALS
from plugin.jobs.options import confine_output
from plugin.mcp.server import build_server

API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_ANSWER = 4000  # ~400 characters per argument at most: huge inputs are never echoed

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.integers(min_value=2500, max_value=10000).map(lambda n: "é\u202e" * n),  # huge, non-ASCII
    st.just("\x00"),
    st.just("../../../../etc/passwd"),
    st.just("Account WHERE Id != null"),
    st.just("Account' OR Name LIKE '%"),
    st.lists(st.text(max_size=20), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
soql_like = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["Account", "Invoice__c", "ns__Thing__c", "Account, Contact", "Account;", "Account--", "A b"]),
    st.from_regex(r"[A-Za-z]\w{0,20}( (WHERE|FROM|LIMIT) .{0,10})?", fullmatch=True),
)

BACKUP_ARGS = {
    "backup_type": st.one_of(st.sampled_from(["full", "incremental", "files_only"]), junk),
    "since_date": st.one_of(st.sampled_from(["2024-01-31", "2024-01-31T12:00:00Z", "3000-01-01", ""]), junk),
    "objects_filter": st.one_of(st.lists(soql_like, max_size=8), junk),
    "include_files": st.one_of(st.booleans(), junk),
    "include_attachments": st.one_of(st.booleans(), junk),
    "include_documents": st.one_of(st.booleans(), junk),
    "compression": st.one_of(st.booleans(), junk),
    "parallel_downloads": st.one_of(st.integers(min_value=-5, max_value=20), junk),
    "output_directory": st.one_of(st.sampled_from(["sub", "/etc", "..", "a/../../b", "~", "/tmp"]), junk),
}
STATUS_ARGS = {
    "job_id": st.one_of(st.text(max_size=30), junk),
    "limit": st.one_of(st.integers(min_value=-3, max_value=300), junk),
    "offset": st.one_of(st.integers(min_value=-3, max_value=2**40), junk),
}
LIST_ARGS = {
    "org_id": st.one_of(st.sampled_from(["00D000000000042", "00D000000000042EAA", "00D'--"]), junk),
    "limit": STATUS_ARGS["limit"],
    "offset": STATUS_ARGS["offset"],
}
STATUS_ARGS["wait_seconds"] = st.one_of(st.floats(min_value=-1, max_value=60), junk)
CANCEL_ARGS = {"job_id": STATUS_ARGS["job_id"], "reason": st.one_of(st.text(max_size=30), junk)}
EVENTS_ARGS = {
    "job_id": STATUS_ARGS["job_id"],
    "after": STATUS_ARGS["offset"],
    "limit": STATUS_ARGS["limit"],
}
TOOLS = {
    "salesforce_backup": BACKUP_ARGS,
    "salesforce_backup_status": STATUS_ARGS,
    "salesforce_backup_list": LIST_ARGS,
    "salesforce_backup_cancel": CANCEL_ARGS,
    "salesforce_backup_resume": {"job_id": STATUS_ARGS["job_id"]},
    "salesforce_backup_events": EVENTS_ARGS,
}
# With no job in the log, these can only refuse (no such job) or, for the readers, answer empty.
ONLY_ERRORS = {"salesforce_backup_cancel", "salesforce_backup_resume"}


def arguments(schema: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the tool's arguments with fuzzed values, sometimes with an unknown one added."""
    extra = st.dictionaries(st.sampled_from(["bogus", "__proto__", "jobId"]), junk, max_size=1)
    return st.fixed_dictionaries({}, optional=schema).flatmap(lambda d: extra.map(lambda e: {**d, **e}))


@pytest.fixture(scope="module", params=["legacy", "auto"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """One connected client per era for all examples (a new one per example would dominate the run)."""
    home = tmp_path_factory.mktemp("fuzz")
    portal: BlockingPortal
    with start_blocking_portal() as portal:
        connected = portal.wrap_async_context_manager(Client(build_server(home), mode=request.param))
        with connected as c:
            yield (portal, c), home


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def check(result: Any, tool: str, args: dict[str, Any]) -> str:
    text = text_of(result)
    assert "Traceback" not in text and 'File "' not in text, text
    assert len(text) <= MAX_ANSWER, (args, len(text))
    if result.is_error:
        assert text.startswith(f"Error executing tool {tool}: ") or text.startswith("Unknown tool"), text
        assert len(text) > len(f"Error executing tool {tool}: ") + 10, text
    return text


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_fuzzed_arguments_get_clear_answers(tool: str, client: tuple[Any, Path]) -> None:
    (portal, connected), home = client
    outcomes: set[str] = set()

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(args=arguments(TOOLS[tool]))
    def probe(args: dict[str, Any]) -> None:
        result = portal.call(connected.call_tool, tool, args)
        text = check(result, tool, args)
        outcomes.add("error" if result.is_error else "answer")
        if tool == "salesforce_backup":
            assert result.is_error  # nothing can start without credentials
            if MISSING_CREDENTIALS in text:  # validation let it through: then the names were API names
                outcomes.add("valid")
                names = args.get("objects_filter") or []
                assert all(isinstance(n, str) and API_NAME.match(n) for n in names), args
        elif not result.is_error:
            content = result.structured_content
            assert content["events"] == [] if tool == "salesforce_backup_events" else content["total"] == 0

    probe()
    expected = {"error"} if tool in ONLY_ERRORS else {"error", "answer"}
    assert outcomes == ({"error", "valid"} if tool == "salesforce_backup" else expected)
    assert not (home / "events.db").exists() or _event_count(home) == 0


def _event_count(home: Path) -> int:
    from events import EventLog

    with EventLog.open(home / "events.db", readonly=True) as log:
        return len(log.read_all(after=0))


@pytest.mark.parametrize(
    "names",
    [
        ["Account WHERE Id != null"],
        ["Account; DELETE FROM Contact"],
        ["Account--"],
        ["Account'"],
        ["Account)"],
        ["Account,Contact FROM Lead"],
        ["../Account"],
        ["Account\nContact"],
    ],
)
def test_object_names_that_could_inject_soql_are_refused_by_name(names: list[str], client: tuple[Any, Path]) -> None:
    (portal, connected), _ = client
    result = portal.call(connected.call_tool, "salesforce_backup", {"objects_filter": names})
    assert result.is_error
    assert "not sObject API names" in text_of(result)


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("salesforce_backup_status", {"job_id": "x" * 1_000_000}, "at most 64 characters"),
        ("salesforce_backup", {"since_date": "2" * 100_000}, "at most 64 characters"),
        ("salesforce_backup", {"output_directory": "a/" * 5000}, "at most 4096 characters"),
        ("salesforce_backup", {"objects_filter": ["Account"] * 2001}, "at most 2000 items"),
        ("salesforce_backup", {"objects_filter": ["A" * 300]}, "at most 255 characters"),
        ("salesforce_backup", {"parallel_downloads": 11}, "less than or equal to 10"),
        ("salesforce_backup_list", {"org_id": "00D' OR 1=1"}, "should match pattern"),
        ("salesforce_backup_status", {"offset": 2**80}, "less than or equal to 1000000000"),
        ("salesforce_backup_status", {"limit": 0}, "greater than or equal to 1"),
    ],
)
def test_huge_or_malformed_arguments_are_refused_naming_the_limit(
    tool: str, args: dict[str, Any], says: str, client: tuple[Any, Path]
) -> None:
    (portal, connected), _ = client
    result = portal.call(connected.call_tool, tool, args)
    assert result.is_error
    text = check(result, tool, args)
    assert says in text and next(iter(args)) in text


@settings(max_examples=200, deadline=None)
@given(
    raw=st.one_of(
        st.text(max_size=40), st.lists(st.sampled_from(["..", ".", "a", "link", "/", "~", "b"])).map("/".join)
    )
)
def test_output_directory_is_refused_or_confined_to_home(raw: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from plugin.errors import BackupRequestError

    home = tmp_path_factory.getbasetemp() / "confine-home"
    home.mkdir(exist_ok=True)
    link = home / "link"
    if not link.is_symlink():
        link.symlink_to("/etc")
    try:
        resolved = Path(confine_output(raw, home, env={}))
    except BackupRequestError:
        return
    assert resolved.is_relative_to(home.resolve())
    assert not resolved.is_relative_to(Path("/etc").resolve())
