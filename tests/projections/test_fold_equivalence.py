"""Live projection == rebuild == pure fold, whatever the events and wherever catch-ups fall.

The store folds stored rows (data as text, a fast decode, mutable drafts, batches); the pure fold
folds recorded events one by one. Hypothesis drives both over random job histories.
"""

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events import EventLog, NewEvent, job_stream
from events.codec import encode
from events.vocabulary import (
    JobCancelled,
    JobCancelRequested,
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobInterrupted,
    JobProgress,
    JobRequested,
    JobStarted,
    ObjectFinished,
)
from projections import ProjectionStore
from projections import store as store_module
from projections.catalog import project_catalog
from projections.job_status import _FIELDS, JobDraft, JobStatus, apply, project_jobs

COUNT = st.integers(min_value=0, max_value=10**12)
PAYLOADS = st.one_of(
    st.builds(
        JobStarted,
        attempt=st.integers(1, 3),
        org_id=st.sampled_from([None, "00Dorg1", "00Dorg2"]),
        objects_total=st.integers(0, 5),
        objects=st.lists(st.sampled_from(["Account", "Case"]), max_size=2).map(tuple),
    ),
    st.builds(
        JobProgress,
        phase=st.sampled_from(["exporting", "downloading_files", "writing_manifest"]),
        objects_done=st.integers(0, 5),
        objects_total=st.integers(0, 5),
        current_object=st.sampled_from([None, "Account"]),
        records=COUNT,
        files=COUNT,
        bytes=COUNT,
        percent=st.integers(-20, 130),
        object_finished=st.one_of(
            st.none(),
            st.builds(
                ObjectFinished,
                object=st.just("Account"),
                records=COUNT,
                sha256=st.sampled_from([None, "ab" * 32]),
                status=st.sampled_from(["exported", "skipped", "failed"]),
                reason=st.sampled_from([None, "INVALID_TYPE"]),
                method=st.sampled_from([None, "rest", "bulk"]),
            ),
        ),
        files_total=st.one_of(st.none(), st.integers(0, 50)),
    ),
    st.builds(
        JobFailed, error_code=st.sampled_from(["E1", "worker_lost"]), message=st.just("m"), retryable=st.booleans()
    ),
    st.builds(
        JobCompleted,
        backup_directory=st.just("/b"),
        manifest_sha256=st.sampled_from([None, "ff"]),
        objects=st.integers(0, 5),
        records=COUNT,
        duration_seconds=st.floats(0, 1e6),
    ),
    st.builds(JobCleaned, reason=st.sampled_from([None, "retention"])),
    st.builds(JobCancelRequested),
    st.builds(JobCancelled, forced=st.booleans()),
    st.builds(JobInterrupted, attempt=st.integers(1, 3)),
)
# (job number, payloads of one append, catch up afterwards?)
STEPS = st.lists(st.tuples(st.integers(0, 4), st.lists(PAYLOADS, min_size=1, max_size=4), st.booleans()), max_size=25)


def _history(log: EventLog, store: ProjectionStore, steps: list[tuple[int, list[Any], bool]]) -> None:
    versions: dict[str, int] = {}
    for job, payloads, catch_up in steps:
        stream = job_stream(f"j{job}")
        events: list[NewEvent] = []
        if stream not in versions:
            events.append(encode(JobRequested(job_id=f"j{job}", org_id="00Dorg1", backup_directory=f"/b/{job}")))
        events += [encode(p, occurred_at=f"2025-01-01T00:00:{len(versions) + len(events):02d}.000Z") for p in payloads]
        log.append(stream, events, expected_version=versions.get(stream, 0))
        versions[stream] = versions.get(stream, 0) + len(events)
        if job == 4:  # a stream that is not a job's: every fold must pass over it
            log.append("audit-x", [NewEvent("job.cleaned", {})], expected_version=None)
        if catch_up:
            store.catch_up()


@settings(max_examples=60, deadline=None)
@given(STEPS, st.sampled_from([1, 3, 500]))
def test_live_projection_equals_rebuild_equals_pure_fold(steps: list[tuple[int, list[Any], bool]], batch: int) -> None:
    original = store_module.BATCH
    store_module.BATCH = batch  # small batches put batch edges everywhere
    try:
        with tempfile.TemporaryDirectory() as folder, EventLog.open(Path(folder) / "events.db") as log:
            store = ProjectionStore(log)
            _history(log, store, steps)
            live = store.dump()
            jobs = {j.job_id: j for j in store.jobs(limit=1000)}
            backups = {b.job_id: b for b in store.backups(limit=1000)}
            recorded = log.read_all()
            assert jobs == project_jobs(recorded)
            assert backups == project_catalog(recorded)
            one_by_one: dict[str, JobStatus] = {}
            for event in recorded:
                if event.stream_id.startswith("job-"):
                    job_id = event.stream_id[4:]
                    one_by_one[job_id] = apply(one_by_one.get(job_id), event)
            assert one_by_one == jobs
            assert store.rebuild() == log.head()[0]
            assert store.dump() == live
    finally:
        store_module.BATCH = original


def test_the_draft_declares_exactly_the_fields_of_the_status() -> None:
    declared = {name for name in JobDraft.__annotations__}
    assert declared == set(_FIELDS) == set(JobStatus.__dataclass_fields__)
    assert JobDraft(JobStatus(job_id="j", percent=5)).freeze() == JobStatus(job_id="j", percent=5)
