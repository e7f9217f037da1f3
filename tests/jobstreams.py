"""Helpers for the guarantee tests: valid job event sequences, the state a correct projection
holds (from the pure folds), and the state the store actually holds (read raw, without catch-up).

The seed of every randomised test comes from ``random_seed()``: set ``TEST_SEED`` to replay a failure.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from events import EventLog, NewEvent, RecordedEvent, job_stream
from events.codec import encode
from events.vocabulary import (
    EventPayload,
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
)
from projections.catalog import BackupEntry, project, project_catalog
from projections.job_status import JobStatus, project_jobs
from projections.store import PROJECTIONS

ORGS = ("00Dorg000000001", "00Dorg000000002")


def random_seed() -> int:
    """``TEST_SEED`` from the environment, else a fresh one; print it so a failure can be replayed."""
    raw = os.environ.get("TEST_SEED")
    seed = int(raw) if raw else random.randrange(2**32)
    print(f"random seed {seed} (replay with TEST_SEED={seed})")
    return seed


def _bool_columns(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.type in ("bool", bool))


_JOB_BOOLS = _bool_columns(JobStatus)
_ENTRY_BOOLS = _bool_columns(BackupEntry)


def expected_state(events: Iterable[RecordedEvent]) -> dict[str, Any]:
    """What a correct projection holds after ``events``: the pure folds, as plain dicts."""
    events = list(events)
    return {
        "jobs": {job_id: status.to_dict() for job_id, status in sorted(project_jobs(events).items())},
        "catalog": {job_id: entry.to_dict() for job_id, entry in sorted(project_catalog(events).items())},
    }


class PureFold:
    """The pure fold (``projections.catalog.project``, which replay uses) advanced along the log.

    A left fold gives the same state whether it runs from zero or resumes where it stopped; resuming
    keeps tests that check after every step linear instead of quadratic.
    """

    def __init__(self) -> None:
        self.position = 0
        self.jobs: dict[str, JobStatus] = {}
        self.catalog: dict[str, BackupEntry] = {}

    def state_at(self, log: EventLog, position: int) -> dict[str, Any]:
        """``expected_state`` of the events up to ``position`` (never before the last one asked)."""
        if position < self.position:
            raise ValueError(f"the fold is at {self.position} already; it cannot go back to {position}")
        project(log.read_all(after=self.position, limit=position - self.position), jobs=self.jobs, catalog=self.catalog)
        self.position = position
        return {
            "jobs": {job_id: status.to_dict() for job_id, status in sorted(self.jobs.items())},
            "catalog": {job_id: entry.to_dict() for job_id, entry in sorted(self.catalog.items())},
        }


def stored_state(log: EventLog) -> dict[str, Any]:
    """What the store's tables hold right now, read without catching up, as the same dicts."""
    jobs = {}
    for row in log.query("SELECT * FROM job_status ORDER BY job_id"):
        row["error"] = None if row["error"] is None else json.loads(row["error"])
        jobs[row["job_id"]] = {**row, **{c: bool(row[c]) for c in _JOB_BOOLS}}
    catalog = {}
    for row in log.query("SELECT * FROM backup_catalog ORDER BY job_id"):
        catalog[row["job_id"]] = {**row, **{c: bool(row[c]) for c in _ENTRY_BOOLS}}
    return {"jobs": jobs, "catalog": catalog}


def stored_dump(log: EventLog) -> dict[str, Any]:
    """``ProjectionStore.dump()`` as stored right now, without its catch-up."""
    checkpoints = log.query(
        "SELECT projection, version, position, last_hash FROM projection_checkpoints "
        "WHERE projection IN (?, ?) ORDER BY projection",
        PROJECTIONS,
    )
    return {
        "job_status": log.query("SELECT * FROM job_status ORDER BY job_id"),
        "backup_catalog": log.query("SELECT * FROM backup_catalog ORDER BY job_id"),
        "checkpoints": [
            {**row, "last_hash": None if row["last_hash"] is None else row["last_hash"].hex()} for row in checkpoints
        ],
    }


def checkpoint_positions(log: EventLog) -> dict[str, int]:
    """Stored checkpoint position of each projection (empty before the first catch-up)."""
    return {
        row["projection"]: row["position"]
        for row in log.query(
            "SELECT projection, position FROM projection_checkpoints WHERE projection IN (?, ?) ORDER BY projection",
            PROJECTIONS,
        )
    }


@dataclass
class _Job:
    job_id: str
    status: str = "requested"
    attempt: int = 0
    records: int = 0
    cleaned: bool = False


class JobScript:
    """Appends valid, randomly chosen next steps for a growing set of jobs (seeded, reproducible)."""

    def __init__(self, rng: random.Random, prefix: str = "j") -> None:
        self.rng = rng
        self.prefix = prefix
        self.jobs: list[_Job] = []
        self.clock = 0

    def _time(self) -> str:
        self.clock += 1
        return f"2025-01-01T{self.clock // 3600 % 24:02d}:{self.clock // 60 % 60:02d}:{self.clock % 60:02d}.000Z"

    def _event(self, payload: EventPayload) -> NewEvent:
        return encode(payload, occurred_at=self._time(), metadata={"actor": "test"})

    def step(self) -> tuple[str, list[NewEvent]]:
        """One valid batch for one job: a new job, or the next step of an existing one."""
        open_jobs = [j for j in self.jobs if not (j.status in ("completed", "failed") and j.cleaned)]
        if not open_jobs or self.rng.random() < 0.2:
            job = _Job(f"{self.prefix}{len(self.jobs):04d}")
            self.jobs.append(job)
            org = self.rng.choice(ORGS)
            request = JobRequested(job_id=job.job_id, org_id=org, backup_directory=f"/backups/{org}/{job.job_id}")
            return job_stream(job.job_id), [self._event(request)]
        job = self.rng.choice(open_jobs)
        if job.status == "requested" or (job.status == "failed" and not job.cleaned and self.rng.random() < 0.5):
            job.status, job.attempt = "running", job.attempt + 1
            return job_stream(job.job_id), [self._event(JobStarted(attempt=job.attempt, objects_total=3))]
        if job.status == "running":
            choice = self.rng.random()
            if choice < 0.6:
                batch = []
                for _ in range(self.rng.randint(1, 8)):
                    job.records += self.rng.randint(0, 500)
                    batch.append(self._event(JobProgress(records=job.records, percent=self.rng.randint(0, 99))))
                return job_stream(job.job_id), batch
            if choice < 0.85:
                job.status = "completed"
                done = JobCompleted(backup_directory=f"/backups/{job.job_id}", objects=3, records=job.records)
                return job_stream(job.job_id), [self._event(done)]
            job.status = "failed"
            failure = JobFailed(error_code="API_LIMIT", message="try later", retryable=True, attempt=job.attempt)
            return job_stream(job.job_id), [self._event(failure)]
        job.cleaned = True
        return job_stream(job.job_id), [self._event(JobCleaned(reason="retention"))]

    def append(self, log: EventLog, batches: int) -> int:
        """Append ``batches`` steps; return the number of events written."""
        written = 0
        for _ in range(batches):
            stream, events = self.step()
            written += len(log.append(stream, events, expected_version=None))
        return written
