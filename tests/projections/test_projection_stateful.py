"""Hypothesis state machine over the store: random interleavings of valid job events for several
jobs, catch-ups, rebuilds and restarts. After every step the stored tables (read without catching
up) equal both the pure folds and a rebuild from zero of the events up to their checkpoint.

The rebuild runs on an in-memory twin of the log that receives the same events (same ids, data
and times, so the same hashes) up to the live checkpoint.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from events import EventLog, NewEvent, job_stream
from events.codec import encode
from events.vocabulary import (
    EventPayload,
    JobCancelled,
    JobCancelRequested,
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
)
from projections import ProjectionStore
from projections import store as store_module
from projections.job_status import project_jobs
from tests.jobstreams import ORGS, checkpoint_positions, expected_state, stored_dump, stored_state


@dataclass
class Job:
    status: str = "requested"
    attempt: int = 0
    cleaned: bool = False


class ProjectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="sfbackup-stateful-"))
        self.path = self.folder / "events.db"
        self._open()
        self.twin = EventLog.open(":memory:")
        self.twin_store = ProjectionStore(self.twin)
        self.jobs: dict[str, Job] = {}
        self.clock = 0
        self.highest = 0
        self.expected: tuple[dict[str, Any], dict[str, Any]] | None = None

    def teardown(self) -> None:
        self.log.close()
        self.twin.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------

    def _open(self) -> None:
        self.log = EventLog.open(self.path)
        # Durability is test_crash's subject; here one fsync per commit would only slow the search.
        self.log.query("PRAGMA synchronous = NORMAL")
        self.store = ProjectionStore(self.log)

    def _append(self, job_id: str, *payloads: EventPayload) -> None:
        events = []
        for payload in payloads:
            self.clock += 1
            events.append(encode(payload, occurred_at=f"2025-01-01T00:00:00.{self.clock:03d}Z"))
        self.log.append(job_stream(job_id), events, expected_version=self.log.stream_version(job_stream(job_id)))

    def _jobs(self, *statuses: str, cleaned: bool | None = None) -> list[str]:
        return sorted(
            j for j, job in self.jobs.items() if job.status in statuses and (cleaned is None or job.cleaned == cleaned)
        )

    def _sync_twin(self, position: int) -> None:
        """Give the twin the live events up to ``position``, exactly as recorded."""
        start = self.twin.head()[0]
        for e in self.log.read_all(after=start, limit=position - start):
            copy = NewEvent(
                e.type,
                e.data,
                metadata=e.metadata,
                event_id=e.event_id,
                schema_version=e.schema_version,
                correlation_id=e.correlation_id,
                causation_id=e.causation_id,
                occurred_at=e.occurred_at,
            )
            self.twin.append(e.stream_id, [copy], expected_version=e.stream_version - 1)

    # -- appends: valid next steps of a job's life -----------------------------------------------

    @rule(org=st.sampled_from(ORGS))
    def request(self, org: str) -> None:
        job_id = f"j{len(self.jobs):03d}"
        self.jobs[job_id] = Job()
        self._append(job_id, JobRequested(job_id=job_id, org_id=org, backup_directory=f"/b/{org}/{job_id}"))

    @precondition(lambda self: self._jobs("requested", "failed", cleaned=False))
    @rule(data=st.data(), objects=st.integers(0, 20))
    def start(self, data: st.DataObject, objects: int) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("requested", "failed", cleaned=False)))
        job = self.jobs[job_id]
        job.status, job.attempt = "running", job.attempt + 1
        self._append(job_id, JobStarted(attempt=job.attempt, objects_total=objects))

    @precondition(lambda self: self._jobs("running"))
    @rule(
        data=st.data(), steps=st.lists(st.tuples(st.integers(0, 10**6), st.integers(-5, 120)), min_size=1, max_size=4)
    )
    def progress(self, data: st.DataObject, steps: list[tuple[int, int]]) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("running")))
        self._append(job_id, *(JobProgress(records=records, percent=percent) for records, percent in steps))

    @precondition(lambda self: self._jobs("running"))
    @rule(data=st.data(), records=st.integers(0, 10**6))
    def complete(self, data: st.DataObject, records: int) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("running")))
        self.jobs[job_id].status = "completed"
        self._append(job_id, JobCompleted(backup_directory=f"/b/{job_id}", records=records, objects=2))

    @precondition(lambda self: self._jobs("running"))
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("running")))
        job = self.jobs[job_id]
        job.status = "failed"
        self._append(job_id, JobFailed(error_code="E", message="boom", retryable=retryable, attempt=job.attempt))

    @precondition(lambda self: self._jobs("requested", "running"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("requested", "running")))
        self.jobs[job_id].status = "cancelled"
        self._append(job_id, JobCancelRequested(reason="user"), JobCancelled())

    @precondition(lambda self: self._jobs("completed", "failed", "cancelled", cleaned=False))
    @rule(data=st.data())
    def clean(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._jobs("completed", "failed", "cancelled", cleaned=False)))
        self.jobs[job_id].cleaned = True
        self._append(job_id, JobCleaned(reason="retention"))

    @precondition(lambda self: self._jobs("completed"))
    @rule(data=st.data())
    def zombie_progress(self, data: st.DataObject) -> None:
        """A worker that lost its lease still reports; the fold must leave the finished job alone."""
        self._append(data.draw(st.sampled_from(self._jobs("completed"))), JobProgress(records=1, percent=1))

    # -- projection operations -------------------------------------------------------------------

    @rule()
    def catch_up(self) -> None:
        self.store.catch_up()
        assert set(checkpoint_positions(self.log).values()) == {self.log.head()[0]}

    @rule()
    def rebuild(self) -> None:
        assert self.store.rebuild() == self.log.head()[0]

    @rule()
    def restart(self) -> None:
        self.log.close()
        self._open()

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def read_status(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        status = self.store.job(job_id)
        assert status is not None
        assert status == project_jobs(self.log.read_all())[job_id]

    # -- the invariant ---------------------------------------------------------------------------

    @invariant()
    def stored_tables_equal_the_folds_and_a_rebuild_from_zero(self) -> None:
        positions = checkpoint_positions(self.log)
        assert len(set(positions.values())) <= 1, positions
        position = next(iter(positions.values()), 0)
        assert position >= self.highest, "a checkpoint moved backwards"
        if not positions:
            assert stored_state(self.log) == {"jobs": {}, "catalog": {}}
            return
        if self.expected is None or position != self.highest:
            # What the events up to the checkpoint must give, computed twice, cached per position.
            self._sync_twin(position)
            self.twin_store.rebuild()
            self.expected = (expected_state(self.log.read_all(limit=position)), stored_dump(self.twin))
        self.highest = position
        folded, rebuilt = self.expected
        assert stored_state(self.log) == folded
        assert stored_dump(self.log) == rebuilt


def _run(monkeypatch: pytest.MonkeyPatch, *, examples: int, steps: int) -> None:
    # Small catch-up batches, so catch-ups and rebuilds cross batch boundaries often.
    monkeypatch.setattr(store_module, "BATCH", 3)
    run_state_machine_as_test(
        ProjectionMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_live_projection_always_equals_the_folds_and_a_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    _run(monkeypatch, examples=30, steps=50)


@pytest.mark.slow
def test_live_projection_always_equals_the_folds_and_a_rebuild_long_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    _run(monkeypatch, examples=300, steps=80)
