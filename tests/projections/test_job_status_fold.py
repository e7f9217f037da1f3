import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import projections
from events import RecordedEvent
from projections.catalog import project_catalog
from projections.job_status import apply, project_jobs


def _event(position: int, type_: str, data: dict[str, Any], stream: str = "job-j") -> RecordedEvent:
    return RecordedEvent(
        position=position,
        event_id=f"e{position}",
        stream_id=stream,
        stream_version=position,
        type=type_,
        schema_version=1,
        data=data,
        metadata={},
        correlation_id=None,
        causation_id=None,
        occurred_at=f"2025-01-01T00:00:{position:02d}.000Z",
        recorded_at="",
        hash="",
    )


def _fold(*events: tuple[str, dict[str, Any]]) -> Any:
    state = None
    for position, (type_, data) in enumerate(events, start=1):
        state = apply(state, _event(position, type_, data))
    return state


@given(st.lists(st.integers(min_value=-50, max_value=150), min_size=1, max_size=40))
def test_percent_never_decreases_and_stays_within_0_and_100(percents: list[int]) -> None:
    state = apply(None, _event(1, "job.requested", {"job_id": "j"}))
    seen = [state.percent]
    for position, percent in enumerate(percents, start=2):
        state = apply(state, _event(position, "job.progress", {"percent": percent}))
        seen.append(state.percent)
    assert seen == sorted(seen)
    assert all(0 <= p <= 100 for p in seen)


def test_a_new_job_is_requested_and_queued() -> None:
    state = _fold(("job.requested", {"job_id": "j", "backup_type": "incremental", "org_id": "00D"}))
    assert (state.status, state.phase, state.backup_type, state.org_id) == (
        "requested",
        "queued",
        "incremental",
        "00D",
    )
    assert state.requested_at == "2025-01-01T00:00:01.000Z"
    assert state.attempt == 0


def test_completion_sets_percent_to_100_and_the_summary() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.started", {"attempt": 1, "objects": ["A", "B"]}),
        ("job.progress", {"phase": "exporting", "percent": 40, "records": 5}),
        ("job.completed", {"backup_directory": "/b", "objects": 2, "records": 9, "skipped": 1}),
    )
    assert (state.status, state.phase, state.percent) == ("completed", "done", 100)
    assert (state.objects_done, state.objects_total, state.records, state.skipped) == (2, 2, 9, 1)
    assert state.finished_at == "2025-01-01T00:00:04.000Z"


def test_a_retry_after_a_retryable_failure_runs_again_and_clears_the_error() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.started", {"attempt": 1}),
        ("job.failed", {"error_code": "worker_lost", "message": "m", "retryable": True}),
    )
    assert state.status == "failed"
    assert state.error.to_dict() == {"code": "worker_lost", "message": "m", "retryable": True}
    state = apply(state, _event(4, "job.started", {"attempt": 2}))
    assert (state.status, state.attempt, state.error, state.finished_at) == ("running", 2, None, None)
    assert state.started_at == "2025-01-01T00:00:02.000Z"


def test_cleaning_does_not_change_the_status() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.failed", {"error_code": "E", "message": "m"}),
        ("job.cleaned", {"removed": ["/tmp/p"]}),
    )
    assert (state.status, state.cleaned, state.cleaned_at) == ("failed", True, "2025-01-01T00:00:03.000Z")


def test_late_events_from_a_zombie_worker_do_not_reopen_a_completed_job() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.completed", {"backup_directory": "/b"}),
        ("job.progress", {"percent": 10, "phase": "exporting"}),
        ("job.failed", {"error_code": "E", "message": "m"}),
        ("job.started", {"attempt": 2}),
    )
    assert (state.status, state.phase, state.percent, state.version) == ("completed", "done", 100, 5)


def test_cancel_request_then_cancelled() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.started", {}),
        ("job.cancel_requested", {"reason": "user"}),
    )
    assert (state.status, state.cancel_requested) == ("running", True)
    state = apply(state, _event(4, "job.cancelled", {"forced": True}))
    assert (state.status, state.phase) == ("cancelled", "cancelled")


def test_interrupted_keeps_the_phase_where_the_worker_stopped() -> None:
    state = _fold(
        ("job.requested", {"job_id": "j"}),
        ("job.started", {}),
        ("job.progress", {"phase": "downloading_files", "percent": 70}),
        ("job.interrupted", {"reason": "reboot", "attempt": 1}),
    )
    assert (state.status, state.phase, state.percent) == ("interrupted", "downloading_files", 70)


def test_project_jobs_ignores_streams_that_are_not_jobs() -> None:
    jobs = project_jobs([_event(1, "job.requested", {"job_id": "j"}), _event(2, "job.requested", {}, stream="other")])
    assert list(jobs) == ["j"]


def test_only_completed_jobs_enter_the_catalog() -> None:
    catalog = project_catalog(
        [
            _event(1, "job.requested", {"job_id": "a"}, stream="job-a"),
            _event(2, "job.requested", {"job_id": "b"}, stream="job-b"),
            _event(3, "job.completed", {"backup_directory": "/a", "manifest_sha256": "ff"}, stream="job-a"),
            _event(4, "job.cancelled", {}, stream="job-b"),
            _event(5, "job.completed", {"backup_directory": "/b"}, stream="job-b"),
        ]
    )
    assert list(catalog) == ["a"]
    assert (catalog["a"].manifest_sha256, catalog["a"].position) == ("ff", 3)


def test_status_dicts_round_trip() -> None:
    state = _fold(("job.requested", {"job_id": "j"}), ("job.failed", {"error_code": "E", "message": "m"}))
    assert projections.JobStatus.from_dict(state.to_dict()) == state


def test_dicts_are_what_asdict_gives() -> None:
    """to_dict reads fields one by one (no deep copy): the same dicts as dataclasses.asdict, error included."""
    failed = _fold(("job.requested", {"job_id": "j"}), ("job.failed", {"error_code": "E", "message": "m"}))
    assert failed.error is not None
    for state in (failed, _fold(("job.requested", {"job_id": "k"}))):
        assert state.to_dict() == dataclasses.asdict(state)
    entry = project_catalog(
        [
            _event(1, "job.requested", {"job_id": "a"}, stream="job-a"),
            _event(2, "job.completed", {"backup_directory": "/a", "manifest_sha256": "ff"}, stream="job-a"),
        ]
    )["a"]
    assert entry.to_dict() == dataclasses.asdict(entry)


def test_package_exports_are_pinned() -> None:
    assert sorted(projections.__all__) == [
        "BackupEntry",
        "JobError",
        "JobStatus",
        "PoisonEventError",
        "ProjectionError",
        "ProjectionStore",
        "RewrittenLogError",
        "render",
        "replay",
        "requested_status",
    ]
