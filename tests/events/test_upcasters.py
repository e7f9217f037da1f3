"""job.progress v2 (``files_total``) and v3 (``object_finished`` status/reason/method): producers write
the current version, older events are upcast on read, never rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from events import EventLog, NewEvent
from events.codec import decode, decode_data, encode
from events.upcasters import upcast_job_progress_v1_v2, upcast_job_progress_v2_v3
from events.vocabulary import JobProgress, ObjectFinished

V1 = {
    "phase": "downloading_files",
    "objects_done": 2,
    "objects_total": 2,
    "current_object": "ContentVersion",
    "records": 1240,
    "files": 30,
    "bytes": 65536,
    "percent": 90,
    "object_finished": None,
}


@pytest.mark.parametrize("phase", ["exporting", "downloading_files", "writing_manifest"])
def test_a_v1_progress_never_knew_the_file_total(phase: str) -> None:
    data = {**V1, "phase": phase}
    assert upcast_job_progress_v1_v2(data) == {**data, "files_total": None}


def test_the_upcaster_leaves_its_input_alone() -> None:
    data = dict(V1)
    upcast_job_progress_v1_v2(data)
    assert data == V1


def test_producers_write_version_3_with_files_total_and_the_object_outcome() -> None:
    event = encode(JobProgress(phase="downloading_files", files=3, files_total=80))
    assert event.schema_version == 3
    assert event.data["files_total"] == 80
    skipped = ObjectFinished("Vote", status="skipped", reason="MALFORMED_QUERY: Implementation restriction")
    data = encode(JobProgress(object_finished=skipped)).data["object_finished"]
    assert data == {
        "object": "Vote",
        "records": 0,
        "sha256": None,
        "status": "skipped",
        "reason": "MALFORMED_QUERY: Implementation restriction",
        "method": None,
    }


def test_a_v2_finished_object_was_exported_by_an_unknown_method() -> None:
    finished = {"object": "Account", "records": 12, "sha256": "ab" * 32}
    v2 = {**V1, "files_total": None, "object_finished": finished}
    assert upcast_job_progress_v2_v3(v2) == {
        **v2,
        "object_finished": {**finished, "status": "exported", "reason": None, "method": None},
    }
    assert upcast_job_progress_v2_v3({**V1, "files_total": 3}) == {**V1, "files_total": 3}
    assert v2["object_finished"] == finished  # the input is left alone


def test_a_v2_event_decodes_as_an_exported_object() -> None:
    data = {**V1, "files_total": None, "object_finished": {"object": "Account", "records": 12, "sha256": "cd" * 32}}
    payload = decode_data("job.progress", 2, data)
    assert payload.object_finished == ObjectFinished("Account", 12, "cd" * 32, "exported", None, None)


def test_an_unknown_object_outcome_is_refused() -> None:
    from events import InvalidEventError

    with pytest.raises(InvalidEventError, match=r"object_finished\.status must be one of"):
        ObjectFinished("Account", status="done")  # type: ignore[arg-type]


def test_a_stored_v1_event_reads_as_v2_and_stays_v1_in_the_log(tmp_path: Any) -> None:
    with EventLog.open(tmp_path / "events.db") as log:
        log.append("job-a", [NewEvent("job.progress", V1, schema_version=1)], expected_version=0)
        (stored,) = log.read_all()
        assert log.verify().ok
    assert (stored.schema_version, stored.data) == (1, V1)
    payload = decode(stored)
    assert isinstance(payload, JobProgress)
    assert (payload.files, payload.files_total, payload.percent) == (30, None, 90)


def test_v2_data_decodes_as_written() -> None:
    payload = decode_data("job.progress", 2, {**V1, "files_total": 80})
    assert isinstance(payload, JobProgress)
    assert payload == JobProgress(
        phase="downloading_files",
        objects_done=2,
        objects_total=2,
        current_object="ContentVersion",
        records=1240,
        files=30,
        files_total=80,
        bytes=65536,
        percent=90,
    )


def test_a_v1_backup_request_exported_every_file_version() -> None:
    """job.requested v2 (``content_versions``): v1 producers had no IsLatest filter, so "all"."""
    from events.upcasters import upcast_job_requested_v1_v2
    from events.vocabulary import JobRequested

    v1 = {"job_id": "j1", "backup_type": "full"}
    assert upcast_job_requested_v1_v2(v1) == {**v1, "content_versions": "all"}
    payload = decode_data("job.requested", 1, v1)
    assert isinstance(payload, JobRequested) and payload.content_versions == "all"
    event = encode(JobRequested(job_id="j2", content_versions="latest"))
    assert (event.schema_version, event.data["content_versions"]) == (2, "latest")
