"""The fast JSON paths give exactly what the standard library gives: the hash chain depends on it."""

import enum
import json
import uuid
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import InvalidEventError, NewEvent
from events.chain import canonical_json, chain_body
from events.codec import decode_data, decode_stored
from events.jsontext import dumps_canonical, loads
from events.vocabulary import PAYLOAD_CLASSES
from tests.events.test_codec import ANY_PAYLOAD


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


# Every code point but surrogates, with the escapes (controls, quote, backslash) well represented.
TEXT = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from('\x00\x1f\x7f"\\\n\t\u2028é😀')),
    max_size=12,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits the fast path must step aside
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(TEXT, inner, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(JSON)
def test_canonical_text_is_the_standard_librarys_byte_for_byte(value: Any) -> None:
    assert dumps_canonical(value) == reference(value)
    assert canonical_json(value) == reference(value)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, 1e-05, 1e16, -0.0]},
        {"big": 2**64, "small": -(2**63) - 1, "edge": [2**64 - 1, -(2**63)]},
        {"😀": 1, "\uffff": 2, "a": 3, "é": 4},
        {"s": Name("sub"), "e": Colour.RED, "o": OrderedDict(z=1, a=2), "t": (1, "x")},
        {1: "int key", 2: "another"},
        {"deep": _nested(80)},
    ],
)
def test_values_off_the_fast_path_still_give_the_reference_text(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@pytest.mark.parametrize(
    "value",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {"x": uuid.uuid4()}, {"x": "\ud800"}, {"x": {1, 2}}],
)
def test_what_the_standard_library_refuses_is_refused(value: Any) -> None:
    with pytest.raises(InvalidEventError, match="not JSON-safe"):
        canonical_json(value)


def test_a_circular_value_is_refused() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InvalidEventError, match="not JSON-safe"):
        canonical_json(loop)


def _typed(value: Any) -> Any:
    """A value with its types spelled out, so 1 and 1.0 and True compare unequal."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=400)
@given(JSON)
def test_loads_gives_the_standard_librarys_values_and_types(value: Any) -> None:
    text = json.dumps(value)
    assert _typed(loads(text)) == _typed(json.loads(text))


@pytest.mark.parametrize("text", ['"\\ud800"', "NaN", "[1e400]", '{"a":123456789012345678901234567890}', "[-0.0]"])
def test_loads_agrees_on_texts_orjson_refuses_or_reads_otherwise(text: str) -> None:
    assert repr(loads(text)) == repr(json.loads(text))


@settings(max_examples=300)
@given(
    st.tuples(TEXT, TEXT, st.integers(min_value=1), TEXT, st.integers(min_value=1), TEXT, TEXT),
    st.one_of(st.none(), TEXT),
    st.one_of(st.none(), TEXT),
)
def test_chain_body_is_canonical_json_of_the_field_list(
    head: tuple[str, str, int, str, int, str, str], correlation: str | None, causation: str | None
) -> None:
    fields = [*head, correlation, causation, "2025-01-01T00:00:00.000Z"]
    assert chain_body(tuple(fields)) == canonical_json(fields).encode("utf-8")


@pytest.mark.parametrize(
    "odd",
    [
        ["e", "s", True, "t", 1, "{}", "{}", 5, None, "now"],
        ["e", Name("s"), 2**70, "t", Colour.RED, "{}", "{}", 1.5, None, "now"],
    ],
)
def test_chain_body_of_odd_field_types_is_still_canonical_json(odd: list[Any]) -> None:
    assert chain_body(tuple(odd)) == canonical_json(odd).encode("utf-8")


def test_chain_body_refuses_a_lone_surrogate() -> None:
    with pytest.raises(InvalidEventError, match="not JSON-safe"):
        chain_body(("e", "s", 1, "t", 1, "{}", "{}", "\ud800", None, "now"))


def _with_big_ints(data: Any, big: int) -> Any:
    if isinstance(data, dict):
        return {k: _with_big_ints(v, big) for k, v in data.items()}
    if isinstance(data, list):
        return [_with_big_ints(v, big) for v in data]
    if isinstance(data, int) and not isinstance(data, bool):
        return big
    return data


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as e:
        return ("error", type(e).__name__, str(e))


@settings(max_examples=300)
@given(ANY_PAYLOAD, st.sampled_from([2**64, -(2**63) - 1, 10**30, 7]))
def test_decode_stored_gives_the_payload_or_error_decode_data_gives(payload: Any, big: int) -> None:
    """The fast parse reads big ints as floats; the decode must never let that show."""
    for data in (payload.to_data(), _with_big_ints(payload.to_data(), big)):
        text = json.dumps(data)
        expected = _outcome(lambda: decode_data(payload.TYPE, payload.SCHEMA_VERSION, json.loads(text)))  # noqa: B023
        assert _outcome(lambda: decode_stored(payload.TYPE, payload.SCHEMA_VERSION, text)) == expected  # noqa: B023


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.TYPE)
@pytest.mark.parametrize("text", ["[1]", "null", '{"attempt": true}', '"\\ud800"', "{}"])
def test_decode_stored_agrees_on_odd_stored_texts(cls: Any, text: str) -> None:
    expected = _outcome(lambda: decode_data(cls.TYPE, cls.SCHEMA_VERSION, json.loads(text)))
    assert _outcome(lambda: decode_stored(cls.TYPE, cls.SCHEMA_VERSION, text)) == expected


FLAT = st.dictionaries(TEXT, SCALARS, max_size=12)  # NewEvent's own fast path: one flat dict


@settings(max_examples=400)
@given(st.one_of(FLAT, st.dictionaries(TEXT, JSON, max_size=5)))
def test_new_event_data_json_is_the_reference_text(data: dict[str, Any]) -> None:
    assert NewEvent("job.progress", data).data_json == reference(data)


@pytest.mark.parametrize(
    "data",
    [
        {"big": 2**64},  # orjson refuses: the reference path writes it
        {"name": Name("x"), "colour": Colour.RED},  # subclasses leave the fast path
        {"ratio": 1e-05},  # a float leaves the fast path (orjson would write 1e-5)
        OrderedDict([("b", 1), ("a", 2)]),  # a dict subclass: sorted like any mapping
    ],
)
def test_new_event_data_off_its_fast_path_is_the_reference_text(data: dict[str, Any]) -> None:
    assert NewEvent("job.progress", data).data_json == reference(data)


@pytest.mark.parametrize(
    "data", [{"when": uuid.UUID(int=1)}, {"bad": "\ud800"}, {"nan": float("nan")}, {1: "x", "a": object()}]
)
def test_new_event_refuses_data_the_standard_library_refuses(data: dict[Any, Any]) -> None:
    with pytest.raises(InvalidEventError, match="not JSON-safe"):
        NewEvent("job.progress", data)
