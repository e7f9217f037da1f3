"""The store's one-pass row fold equals the reference (decode every row, then fold), shape by shape.

The fast path takes progress rows as parsed JSON; every near miss of its shape must give exactly
what the general decode gives: the same status, or the same PoisonEventError with nothing changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.records import EventRow
from projections import PoisonEventError
from projections.catalog import BackupEntry, fold
from projections.job_status import JobStatus, decoded_rows
from projections.rowfold import fold_rows

FINISHED = {"object": "Account", "records": 7, "sha256": None, "status": "skipped", "reason": "r", "method": None}
PROGRESS = {
    "phase": "exporting",
    "objects_done": 1,
    "objects_total": 4,
    "current_object": "Case",
    "records": 10,
    "files": 0,
    "files_total": None,
    "bytes": 0,
    "percent": 40,
    "object_finished": None,
}
STARTED = {"attempt": 1, "worker_id": "w", "pid": 1, "objects_total": 4}


def _rows(*progress: tuple[int, Any]) -> list[EventRow]:
    """job.requested, job.started, then one job.progress row per (schema version, data) given."""
    rows: list[EventRow] = [
        (1, "job-a", 1, "job.requested", 2, json.dumps({"job_id": "a"}), "2025-01-01T00:00:00.000Z"),
        (2, "job-a", 2, "job.started", 1, json.dumps(STARTED), "2025-01-01T00:00:01.000Z"),
    ]
    for i, (version, data) in enumerate(progress, start=3):
        text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)  # as NewEvent stores it
        rows.append((i, "job-a", i, "job.progress", version, text, f"2025-01-01T00:00:{i:02d}.000Z"))
    return rows


def _reference(rows: list[EventRow], jobs: dict[str, JobStatus], catalog: dict[str, BackupEntry]) -> set[str]:
    return fold(decoded_rows(rows), jobs=jobs, catalog=catalog)


def _both(rows: list[EventRow]) -> tuple[Any, Any]:
    outcomes: list[tuple[Any, ...]] = []
    for folder in (_reference, lambda r, j, c: fold_rows(r, jobs=j, catalog=c)):
        jobs: dict[str, JobStatus] = {}
        catalog: dict[str, BackupEntry] = {}
        try:
            touched = folder(rows, jobs, catalog)
            outcomes.append(("ok", touched, jobs, catalog))
        except PoisonEventError as e:
            outcomes.append(("poison", e.position, str(e), jobs, catalog))
        except ValueError as e:  # text that is not JSON (EventLog never stores it; verify names such a row)
            outcomes.append(("error", type(e), str(e), jobs, catalog))
    return outcomes[0], outcomes[1]


NEAR_MISSES = {
    "as to_data writes it": PROGRESS,
    "keys in another order": json.dumps(dict(reversed(list(PROGRESS.items())))),
    "files_total known": {**PROGRESS, "files_total": 12},
    "no current object": {**PROGRESS, "current_object": None},
    "percent above 100": {**PROGRESS, "percent": 130},
    "percent below 0": {**PROGRESS, "percent": -5},
    "skipped object": {**PROGRESS, "object_finished": FINISHED},
    "exported object, all optional fields set": {
        **PROGRESS,
        "object_finished": {**FINISHED, "status": "exported", "sha256": "ab", "method": "bulk"},
    },
    "finished object keys in another order": json.dumps(
        {**PROGRESS, "object_finished": dict(reversed(FINISHED.items()))}
    ),
    "finished object without optional fields": {**PROGRESS, "object_finished": {"object": "Account"}},
    "a missing field (default)": {k: v for k, v in PROGRESS.items() if k != "bytes"},
    "an extra field": {**PROGRESS, "extra": 1},
    "bool for a count": {**PROGRESS, "records": True},
    "float for a count": {**PROGRESS, "records": 1.5},
    "string for a count": {**PROGRESS, "files": "3"},
    "int for the phase": {**PROGRESS, "phase": 3},
    "unknown finished status": {**PROGRESS, "object_finished": {**FINISHED, "status": "lost"}},
    "finished object as a list": {**PROGRESS, "object_finished": ["Account"]},
    "finished object with a bool count": {**PROGRESS, "object_finished": {**FINISHED, "records": False}},
    "an int beyond 64 bits": {**PROGRESS, "records": 2**70},
    "data not an object": [1, 2],
    "not JSON": "{not json",  # EventLog never stores this; verify names a row written so around it
}


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_each_progress_shape_folds_as_the_reference(case: str) -> None:
    reference, fast = _both(_rows((3, NEAR_MISSES[case]), (3, PROGRESS)))
    assert fast == reference


def test_older_versions_are_upcast_like_the_reference() -> None:
    v1 = {k: v for k, v in PROGRESS.items() if k != "files_total"}
    v2 = {**PROGRESS, "object_finished": {"object": "Account", "records": 3, "sha256": None}}
    reference, fast = _both(_rows((1, v1), (2, v2), (3, PROGRESS)))
    assert reference[0] == "ok"
    assert fast == reference


def test_a_poison_row_leaves_jobs_and_catalog_untouched() -> None:
    rows = _rows((3, PROGRESS), (3, {**PROGRESS, "phase": 3}))
    jobs: dict[str, JobStatus] = {"a": JobStatus(job_id="a", first_position=1)}
    catalog: dict[str, BackupEntry] = {}
    before = dict(jobs)
    with pytest.raises(PoisonEventError) as raised:
        fold_rows(rows, jobs=jobs, catalog=catalog)
    assert raised.value.position == 4
    assert jobs == before and catalog == {}


def test_a_skipped_object_counts_once_per_event() -> None:
    skipped = {**PROGRESS, "object_finished": FINISHED}
    jobs: dict[str, JobStatus] = {}
    fold_rows(_rows((3, skipped), (3, PROGRESS), (3, skipped)), jobs=jobs, catalog={})
    assert jobs["a"].skipped == 2
    assert jobs["a"].last_position == 5 and jobs["a"].version == 5
