"""Audit views over hand-built events: job, org and correlation histories, who started each job."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events import RecordedEvent
from events.streamfile import event_dict, from_line
from projections.audit import (
    JobOrigin,
    Selection,
    Selector,
    correlation_history,
    export_lines,
    job_history,
    job_origins,
    org_history,
    select,
)

ORG_A, ORG_B = "00D000000000001AAA", "00D000000000002AAA"


def ev(
    position: int,
    stream: str,
    type: str,
    data: dict[str, Any] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        event_id=f"e{position}",
        stream_id=stream,
        stream_version=position,
        type=type,
        schema_version=1,
        data=data or {},
        metadata=metadata or {},
        correlation_id=correlation_id,
        causation_id=None,
        occurred_at=f"2025-06-01T00:00:{position:02d}.000Z",
        recorded_at=f"2025-06-01T00:00:{position:02d}.000Z",
        hash=f"{position:064x}",
    )


MCP_META = {"actor": "mcp", "tool": "salesforce_backup", "host": "ada-laptop", "pid": 4242, "auth": "session"}
CLI_META = {"actor": "cli", "tool": "sfbackup backup", "host": "build-1", "pid": 7, "user": "ada", "auth": "jwt"}

HISTORY = [
    ev(
        1,
        "job-a",
        "job.requested",
        {"job_id": "a", "org_id": ORG_A, "backup_type": "full"},
        metadata=MCP_META,
        correlation_id="mcp-r1",
    ),
    ev(2, "job-b", "job.requested", {"job_id": "b", "backup_type": "incremental"}, metadata=CLI_META),
    ev(
        3,
        "job-a",
        "job.started",
        {"org_id": ORG_A, "worker_id": "ada-laptop:500:1", "pid": 500},
        correlation_id="mcp-r1",
    ),
    ev(4, "job-b", "job.started", {"org_id": ORG_B, "worker_id": "build-1:8:1", "pid": 8}),
    ev(5, "other", "note.written", {"org_id": ORG_A}),
    ev(6, "job-a", "job.progress", {"records": 10}, correlation_id="mcp-r1"),
    ev(7, "job-c", "job.requested", {"job_id": "c"}, metadata={"actor": "cli"}),
    ev(8, "job-c", "job.started", {"org_id": ORG_A, "worker_id": "w", "pid": 9}),
    ev(9, "job-a", "job.completed", {"backup_directory": "/b"}, correlation_id="mcp-r1"),
    ev(10, "job-b", "job.failed", {"error_code": "E", "message": "m"}),
    ev(11, "job-c", "job.started", {"org_id": ORG_A, "worker_id": "w2", "pid": 10}),
]


def positions(events: list[RecordedEvent]) -> list[int]:
    return [e.position for e in events]


def test_job_history_is_every_event_of_the_job_in_order() -> None:
    assert positions(job_history(HISTORY, "a")) == [1, 3, 6, 9]
    assert positions(job_history(HISTORY, "b")) == [2, 4, 10]
    assert job_history(HISTORY, "zzz") == []


def test_org_history_takes_whole_job_streams_including_events_before_the_org_was_named() -> None:
    # job-c names its org only in job.started, yet its job.requested belongs to the org too.
    assert positions(org_history(HISTORY, ORG_A)) == [1, 3, 6, 7, 8, 9, 11]
    assert positions(org_history(HISTORY, ORG_B)) == [2, 4, 10]
    assert org_history(HISTORY, "00D999") == []


def test_correlation_history_is_the_events_of_one_mcp_request() -> None:
    assert positions(correlation_history(HISTORY, "mcp-r1")) == [1, 3, 6, 9]
    assert correlation_history(HISTORY, "mcp-r2") == []


def test_selection_fields_combine() -> None:
    assert positions(select(HISTORY, Selection(org_id=ORG_A, types=frozenset({"job.started"})))) == [3, 8, 11]
    assert positions(select(HISTORY, Selection(job_id="b", types=frozenset({"job.failed"})))) == [10]
    assert positions(select(HISTORY, Selection(job_id="a", org_id=ORG_B))) == []
    assert positions(select(HISTORY, Selection())) == list(range(1, 12))


def test_the_live_selector_holds_a_stream_back_until_its_org_is_known() -> None:
    selector = Selector(Selection(org_id=ORG_A))
    fed = {e.position: positions(selector.feed(e)) for e in HISTORY}
    assert fed[7] == []  # job-c's org is not known yet
    assert fed[8] == [7, 8]  # released, in stream order, once job.started names it
    assert fed[2] == [] and fed[4] == [] and fed[10] == []  # job-b is another org's


def test_who_started_each_job_comes_from_job_requested_metadata_and_the_first_worker() -> None:
    origins = job_origins(HISTORY)
    assert [o.job_id for o in origins] == ["a", "b", "c"]
    assert origins[0] == JobOrigin(
        job_id="a",
        requested_at="2025-06-01T00:00:01.000Z",
        position=1,
        event_id="e1",
        org_id=ORG_A,
        backup_type="full",
        actor="mcp",
        tool="salesforce_backup",
        user=None,
        host="ada-laptop",
        pid=4242,
        auth="session",
        correlation_id="mcp-r1",
        worker_id="ada-laptop:500:1",
        worker_pid=500,
    )
    assert (origins[1].actor, origins[1].tool, origins[1].user, origins[1].host) == (
        "cli",
        "sfbackup backup",
        "ada",
        "build-1",
    )
    assert (origins[2].worker_id, origins[2].worker_pid, origins[2].tool) == ("w", 9, None)


def test_origins_ignore_metadata_of_the_wrong_type_and_jobs_without_a_request() -> None:
    events = [
        ev(1, "job-x", "job.started", {"worker_id": "w"}),
        ev(2, "job-y", "job.requested", {"job_id": "y"}, metadata={"actor": 3, "pid": True, "host": ""}),
    ]
    (origin,) = job_origins(events)
    assert origin.job_id == "y"
    assert (origin.actor, origin.pid, origin.host, origin.worker_id) == (None, None, None, None)


def test_export_lines_are_the_events_json_shape_and_read_back() -> None:
    lines = list(export_lines(HISTORY[:2]))
    assert [from_line(line, line_number=1) for line in lines] == HISTORY[:2]
    assert sorted(event_dict(HISTORY[0])) == [
        "causation_id",
        "correlation_id",
        "data",
        "event_id",
        "hash",
        "metadata",
        "position",
        "schema_version",
        "stream",
        "time",
        "type",
        "version",
    ]


STREAM_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["job-a", "job-b", "job-c", "other"]),
        st.sampled_from(["job.requested", "job.started", "job.progress"]),
        st.sampled_from([None, ORG_A, ORG_B]),
    ),
    max_size=30,
)


@given(STREAM_EVENTS)
def test_org_selection_equals_the_two_pass_definition(spec: list[tuple[str, str, str | None]]) -> None:
    events = [
        ev(i, stream, type, {} if org is None else {"org_id": org}) for i, (stream, type, org) in enumerate(spec, 1)
    ]
    first_org: dict[str, str] = {}
    for e in events:
        org = e.data.get("org_id")
        if org and e.type in ("job.requested", "job.started") and e.stream_id.startswith("job-"):
            first_org.setdefault(e.stream_id, org)
    expected = [e for e in events if first_org.get(e.stream_id) == ORG_A]
    assert select(events, Selection(org_id=ORG_A)) == expected
