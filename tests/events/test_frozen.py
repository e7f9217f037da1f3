"""``build`` makes the same frozen instances as the constructors it stands in for."""

import dataclasses

import pytest
from hypothesis import given

from events import RecordedEvent
from events.frozen import build
from events.vocabulary import JobProgress, JobRequested
from projections.job_status import JobStatus
from tests.events.test_codec import _payloads


@pytest.mark.parametrize(
    "instance",
    [
        JobProgress(phase="exporting", objects_done=1, current_object=None, records=5),
        JobStatus(job_id="j", status="running", percent=40),
        RecordedEvent(1, "e", "job-j", 1, "job.progress", 1, {"a": 1}, {}, None, "c", "t", "r", "ab" * 32),
    ],
    ids=lambda i: type(i).__name__,
)
def test_a_built_instance_equals_the_constructed_one_in_every_respect(instance: object) -> None:
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}  # type: ignore[arg-type]
    built = build(type(instance), values)
    assert built == instance
    assert repr(built) == repr(instance)
    if type(instance) is not RecordedEvent:  # a RecordedEvent holds dicts: unhashable either way
        assert hash(built) == hash(instance)
    assert vars(built) == vars(instance)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.x = 1  # type: ignore[attr-defined]


def test_build_refuses_a_missing_value_and_a_class_with_post_init() -> None:
    with pytest.raises(TypeError, match="one value for each of its 10 fields"):
        build(JobProgress, {"phase": "exporting"})
    with pytest.raises(TypeError, match="__post_init__"):
        build(JobRequested, {"job_id": "j"})


@given(_payloads(JobProgress))
def test_progress_decoded_on_the_fast_path_is_the_constructed_payload(payload: JobProgress) -> None:
    decoded = JobProgress.from_data(payload.to_data())
    assert decoded == payload
    assert vars(decoded) == vars(payload)
