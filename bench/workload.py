"""The event shapes every benchmark variant writes, and builders for the larger logs.

One payload shape for all stores (a ``job.progress`` payload, ~140 bytes of JSON), so the append
and read figures compare stores, not payloads. The rebuild and status logs use realistic job
streams built from the real vocabulary (requested, started, many progress, completed/failed,
sometimes cleaned).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from events import EventLog, NewEvent, job_stream
from events.codec import encode
from events.vocabulary import (
    JobCleaned,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRequested,
    JobStarted,
    ObjectFinished,
    SkippedObject,
)

OBJECTS = ("Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Event", "ContentVersion", "Campaign", "User")


def progress_payload(i: int) -> dict[str, Any]:
    """The payload every append/read variant stores: what a worker writes between objects."""
    return {
        "phase": "exporting",
        "objects_done": i % 40,
        "objects_total": 40,
        "current_object": OBJECTS[i % len(OBJECTS)],
        "records": i * 250,
        "files": 0,
        "bytes": 0,
        "percent": i % 100,
        "object_finished": None,
    }


def plan(n: int, per_stream: int) -> list[tuple[int, int]]:
    """(stream number, event number in stream) in append order: streams filled one after another."""
    return [(s, v) for s in range(max(1, n // per_stream)) for v in range(per_stream)]


def _metadata(attempt: int = 1) -> dict[str, Any]:
    return {"actor": "worker", "worker_id": "bench-host:4242:1717000000000000000", "pid": 4242, "attempt": attempt}


def job_events(job_number: int, size: int) -> list[NewEvent]:
    """One job's whole stream of ``size`` events (>= 5), as the MCP tool and a worker write it.

    Every 20th job fails instead of completing; every 10th is cleaned afterwards.
    """
    cleaned = job_number % 10 == 3
    job_id = f"bench{job_number:08d}"
    minute = f"2025-06-07T{(job_number // 60) % 24:02d}:{job_number % 60:02d}"
    directory = f"/home/ada/sfbackup/backups/00D5g000004Xyz1EAC/20250607T220000Z-{job_id}"
    events = [
        encode(
            JobRequested(
                job_id=job_id,
                backup_type="full" if job_number % 3 else "incremental",
                org_id="00D5g000004Xyz1EAC",
                instance_url="https://acme.my.salesforce.com",
                api_version="62.0",
                backup_directory=directory,
            ),
            metadata={"actor": "mcp", "tool": "salesforce_backup", "host": "bench-host", "pid": 4100},
            occurred_at=f"{minute}:00.000Z",
        ),
        encode(
            JobStarted(
                attempt=1,
                worker_id="bench-host:4242:1717000000000000000",
                pid=4242,
                org_id="00D5g000004Xyz1EAC",
                instance_url="https://acme.my.salesforce.com",
                api_version="62.0",
                objects_total=len(OBJECTS),
                objects=OBJECTS,
                skipped=(SkippedObject("LoginHistory", "not replicable"),),
                partial_directory=directory + ".partial",
            ),
            metadata=_metadata(),
            occurred_at=f"{minute}:01.000Z",
        ),
    ]
    progress = size - 3 - cleaned
    for i in range(progress):
        done = i * len(OBJECTS) // max(1, progress)
        finished = None
        if i and (i + 1) * len(OBJECTS) // progress != done:
            finished = ObjectFinished(OBJECTS[done], records=i * 250, sha256="ab" * 32)
        events.append(
            encode(
                JobProgress(
                    phase="exporting",
                    objects_done=done,
                    objects_total=len(OBJECTS),
                    current_object=OBJECTS[done],
                    records=i * 250,
                    percent=min(99, 100 * i // max(1, progress)),
                    object_finished=finished,
                ),
                metadata=_metadata(),
                occurred_at=f"{minute}:{2 + i % 50:02d}.{i % 1000:03d}Z",
            )
        )
    if job_number % 20 == 7:
        last: NewEvent = encode(
            JobFailed(
                error_code="REQUEST_LIMIT_EXCEEDED", message="daily API limit", retryable=True, phase="exporting"
            ),
            metadata=_metadata(),
            occurred_at=f"{minute}:59.000Z",
        )
    else:
        last = encode(
            JobCompleted(
                backup_directory=directory,
                manifest_sha256="cd" * 32,
                objects=len(OBJECTS),
                records=progress * 250,
                skipped=1,
                duration_seconds=58.5,
            ),
            metadata=_metadata(),
            occurred_at=f"{minute}:59.000Z",
        )
    events.append(last)
    if cleaned:
        events.append(encode(JobCleaned(reason="retention"), metadata=_metadata(), occurred_at=f"{minute}:59.500Z"))
    return events


def job_batches(total: int, size: int) -> Iterator[tuple[str, list[NewEvent]]]:
    """Jobs of ``size`` events, exactly ``total`` events in all (the last job takes any remainder)."""
    job = 0
    remaining = total
    while remaining > 0:
        this = remaining if remaining < 2 * size else size
        yield job_stream(f"bench{job:08d}"), job_events(job, max(5, this))
        remaining -= this
        job += 1


def build_job_log(path: Path, total: int, size: int = 100) -> int:
    """Write ``total`` events of realistic job streams, one batched append per job; return the count."""
    count = 0
    with EventLog.open(path) as log:
        for stream, events in job_batches(total, size):
            count += len(log.append(stream, events, expected_version=0))
    return count
