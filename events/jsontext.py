"""JSON text for the log: canonical serialisation (the hash chain depends on its exact bytes) and parsing.

The reference is the standard library: ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` and ``json.loads``. orjson is several times faster and gives
the same text and values for plain data (exact ``str``/``int``/``bool``/``None``/``dict``/``list``/
``tuple``, ints in 64 bits), so it is used only there; anything else (floats, big ints, subclasses,
other types, odd keys) takes the standard library path. ``tests/events/test_jsontext.py`` proves
both functions equal to the reference with Hypothesis.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
PLAIN_SCALARS = _SCALARS = frozenset({str, int, bool, type(None)})
# ``all_plain_scalars(map(type, items))``: the test in C without building a set of the types.
all_plain_scalars = PLAIN_SCALARS.issuperset
_CONTAINERS = frozenset({dict, list, tuple})
_PLAIN = _SCALARS | _CONTAINERS
# Deeper values go to the standard library (orjson's own limit is 255 levels).
_MAX_DEPTH = 64


def _plain(value: Any, depth: int) -> bool:
    """True if ``value`` holds only types for which orjson and the standard library agree byte for byte.

    Floats are excluded: the two spell some exponents differently (``1e-05`` vs ``1e-5``). Keys
    are not checked: orjson refuses all but exact ``str`` keys, and a refusal falls back to the
    reference. The types of a container's items are collected in C (``set(map(type, ...))``):
    this check runs for every event, and a Python loop over the items cost more than orjson.
    """
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _SCALARS
    kinds = set(map(type, items))
    if kinds <= _SCALARS:
        return True
    if depth >= _MAX_DEPTH or not kinds <= _PLAIN:
        return False
    return all(_plain(item, depth + 1) for item in items if type(item) in _CONTAINERS)


def dumps_canonical(value: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII as is; exactly the standard library's text, and valid UTF-8.

    Raises:
        TypeError: a value is not JSON-serialisable.
        ValueError: NaN or an infinity, a circular reference, or a lone surrogate (which the
            standard library writes but UTF-8 cannot hold).
    """
    # A flat dict (most event data) is recognised without a call into _plain.
    if (type(value) is dict and all_plain_scalars(map(type, value.values()))) or _plain(value, 0):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except orjson.JSONEncodeError:
            pass  # an int beyond 64 bits or a lone surrogate: let the reference decide
    text = _STDLIB.encode(value)
    text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return text


def dumps_plain_list(items: tuple[Any, ...]) -> bytes | None:
    """The UTF-8 of ``dumps_canonical(list(items))`` when every item is an exact str/int/None, else None.

    The hash chain's field list is such a list; orjson writes it as bytes, ready to hash.
    """
    for item in items:
        if type(item) is not str and item is not None and type(item) is not int:
            return None
    try:
        return orjson.dumps(items)
    except orjson.JSONEncodeError:
        return None  # an int beyond 64 bits or a lone surrogate


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        return any(type(item) is float or (type(item) in _CONTAINERS and _has_float(item)) for item in value.values())
    if kind is list:
        return any(type(item) is float or (type(item) in _CONTAINERS and _has_float(item)) for item in value)
    return False


def loads(text: str | bytes) -> Any:
    """Parse JSON text exactly as ``json.loads`` does (same values, same types).

    orjson parses integers beyond 64 bits as floats and refuses some texts the standard library
    accepts (lone surrogate escapes, NaN); a result with a float in it, or a refusal, is parsed again
    by the standard library.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    if _has_float(value):
        return json.loads(text)
    return value


# orjson alone: faster than ``loads``, but integers beyond 64 bits become floats. Only for callers
# that validate the result and fall back to ``loads`` when validation fails, so the difference
# cannot reach their output (``events.codec.decode_stored``). Raises ValueError on bad JSON.
loads_plain = orjson.loads
