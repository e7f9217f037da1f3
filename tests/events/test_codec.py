import dataclasses
import json
import re
import types
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import events
from events import InvalidEventError, RecordedEvent, UnknownEventTypeError, new_event_id, new_job_id
from events.codec import UPCASTERS, decode, decode_data, encode
from events.vocabulary import PAYLOAD_CLASSES, REGISTRY, JobProgress, ObjectFinished, SkippedObject

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if tp is str:
        return TEXT
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp in (SkippedObject, ObjectFinished):
        return _payloads(tp)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is tuple:
        return st.lists(_strategy(typing.get_args(tp)[0]), max_size=4).map(tuple)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _strategy(a) for a in typing.get_args(tp)))
    raise AssertionError(f"no strategy for {tp!r}")


def _payloads(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)})


ANY_PAYLOAD = st.one_of(*(_payloads(cls) for cls in PAYLOAD_CLASSES))


def _as_recorded(event: events.NewEvent) -> RecordedEvent:
    """What a read gives back: data and metadata through their stored JSON text."""
    return RecordedEvent(
        position=1,
        event_id=event.event_id,
        stream_id="job-x",
        stream_version=1,
        type=event.type,
        schema_version=event.schema_version,
        data=json.loads(json.dumps(event.data)),
        metadata=json.loads(json.dumps(event.metadata)),
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        occurred_at=event.occurred_at,
        recorded_at=event.occurred_at,
        hash="",
    )


@given(ANY_PAYLOAD)
def test_every_payload_type_round_trips_through_the_codec(payload: Any) -> None:
    event = encode(payload, metadata={"actor": "test"})
    assert event.type == payload.TYPE
    assert decode(_as_recorded(event)) == payload


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.TYPE)
def test_every_payload_type_is_registered_and_past_tense(cls: Any) -> None:
    assert REGISTRY[cls.TYPE] is cls
    assert re.fullmatch(r"job\.[a-z_]+", cls.TYPE)
    for version in range(1, cls.SCHEMA_VERSION):  # every older version has its named upcaster
        step = UPCASTERS[(cls.TYPE, version)]
        assert step.__name__ == f"upcast_{cls.TYPE.replace('.', '_')}_v{version}_v{version + 1}"


def test_registry_holds_exactly_the_designed_vocabulary() -> None:
    assert sorted(REGISTRY) == [
        "job.cancel_requested",
        "job.cancelled",
        "job.cleaned",
        "job.completed",
        "job.failed",
        "job.interrupted",
        "job.progress",
        "job.requested",
        "job.started",
    ]


def test_decoding_an_unknown_type_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventTypeError):
        decode_data("job.teleported", 1, {})


def test_decoding_a_missing_required_field_raises_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="error_code"):
        decode_data("job.failed", 1, {"message": "x"})


def test_decoding_a_count_given_as_bool_raises_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="records"):
        decode_data("job.progress", 1, {"records": True})


def test_upcasters_run_in_order_from_the_stored_version() -> None:
    def upcast_job_progress_v0_v1(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "percent": data.pop("pct")}

    steps = {**UPCASTERS, ("job.progress", 0): upcast_job_progress_v0_v1}
    payload = decode_data("job.progress", 0, {"pct": 42, "phase": "writing_manifest", "files": 3}, upcasters=steps)
    assert payload == JobProgress(percent=42, phase="writing_manifest", files=3, files_total=None)


def test_a_missing_upcaster_or_a_future_version_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="no upcaster"):
        decode_data("job.progress", 0, {})
    with pytest.raises(InvalidEventError, match="upgrade"):
        decode_data("job.progress", JobProgress.SCHEMA_VERSION + 1, {})


def test_new_event_refuses_data_that_is_not_json_safe() -> None:
    with pytest.raises(InvalidEventError):
        events.NewEvent("job.progress", {"x": float("nan")})
    with pytest.raises(InvalidEventError):
        events.NewEvent("job.progress", {"x": object()})
    with pytest.raises(InvalidEventError):
        events.NewEvent("job.progress", {"x": "\ud800"})


@pytest.mark.parametrize("field", ["correlation_id", "causation_id", "occurred_at"])
def test_new_event_refuses_ids_and_times_that_are_not_strings(field: str) -> None:
    # Regression: an int correlation id was hashed as a JSON number but stored as text, so the
    # chain of a log holding it no longer verified.
    with pytest.raises(InvalidEventError, match=field):
        events.NewEvent("job.progress", {}, **{field: 42})


def test_new_event_defaults_to_a_uuid7_and_an_rfc3339_utc_time() -> None:
    event = events.NewEvent("job.progress", {})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", event.event_id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event.occurred_at)


def test_event_ids_are_uuid7_and_job_ids_are_sortable_ulids() -> None:
    assert new_event_id() != new_event_id()
    ids = [new_job_id() for _ in range(50)]
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    assert len(set(ids)) == 50
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)


def test_package_exports_are_pinned() -> None:
    assert sorted(events.__all__) == [
        "ChainError",
        "ChainReport",
        "ConcurrencyError",
        "EventLog",
        "EventLogError",
        "Follower",
        "IdempotencyConflictError",
        "InvalidEventError",
        "LogIntegrityError",
        "NewEvent",
        "RecordedEvent",
        "StorageFullError",
        "StoreBusyError",
        "Transaction",
        "UnknownEventTypeError",
        "job_stream",
        "new_event_id",
        "new_job_id",
    ]


def test_every_error_derives_from_event_log_error() -> None:
    for name in events.__all__:
        obj = getattr(events, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, events.EventLogError), name
