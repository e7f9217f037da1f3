"""Typed comparison of record values with SOQL literals, and sort keys, by describe field type.

Salesforce compares strings case-insensitively, ids by their 15-char case-sensitive form,
numbers as decimals (records hold literal text) and datetimes as instants whatever the offset.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .soql import Literal
from .table import ID_TYPES, NUMBER_TYPES

_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")

# Which literal kind a field type accepts in a filter, and the name Salesforce's error uses.
_EXPECTED: dict[str, tuple[str, str]] = {
    "int": ("number", "integer"),
    "long": ("number", "long"),
    "double": ("number", "double"),
    "currency": ("number", "currency"),
    "percent": ("number", "double"),
    "boolean": ("boolean", "boolean"),
    "date": ("date", "date"),
    "datetime": ("datetime", "dateTime"),
}


class Stamp(str):
    """A datetime string that carries its parsed instant, so filters on generated rows skip parsing."""

    __slots__ = ("instant",)
    instant: dt.datetime

    def __new__(cls, text: str, instant: dt.datetime) -> Stamp:
        stamp = super().__new__(cls, text)
        stamp.instant = instant
        return stamp


def expected_literal(field_type: str) -> tuple[str, str]:
    """(literal kind, Salesforce type name) a filter on a field of this type must use."""
    return _EXPECTED.get(field_type, ("string", "string"))


def parse_datetime(text: str) -> dt.datetime | None:
    """An aware datetime from `2024-01-01T00:00:00Z`, `...000+0000` or `...+01:00`; None if unparsable."""
    match = _DATETIME.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, dt.timezone(offset)
        )
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def comparable(field_type: str, value: Any) -> Any:
    """A record value or decoded literal in a form that orders correctly for its type (None stays None)."""
    if value is None:
        return None
    if field_type in NUMBER_TYPES:
        return _decimal(value)
    if field_type == "datetime":
        if isinstance(value, Stamp):
            return value.instant
        return value if isinstance(value, dt.datetime) else parse_datetime(str(value))
    if field_type == "date":
        return value if isinstance(value, dt.date) else _date(value)
    if field_type == "boolean":
        return bool(value) if isinstance(value, bool) else str(value).lower() == "true"
    if field_type in ID_TYPES:
        text = str(value)
        return text[:15] if len(text) in (15, 18) else text
    if isinstance(value, dict | list):
        return None
    return str(value).casefold()


def literal_value(field_type: str, literal: Literal) -> Any:
    """The comparable value of a literal for a field of `field_type`."""
    if literal.kind == "null":
        return None
    if literal.kind == "string":
        return comparable(field_type, literal.string_value())
    if literal.kind == "boolean":
        return literal.text == "true"
    if literal.kind == "datetime":
        return parse_datetime(literal.text)
    if literal.kind == "date":
        return _date(literal.text)
    return comparable(field_type, literal.text)


def compare(left: Any, op: str, right: Any) -> bool:
    """SOQL comparison of two comparable values; null only equals null, never orders."""
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "<":
            return bool(left < right)
        if op == ">":
            return bool(left > right)
        if op == "<=":
            return bool(left <= right)
        return bool(left >= right)
    except TypeError:
        return False


def like_matcher(pattern: str) -> re.Pattern[str]:
    r"""A regex for a LIKE pattern: % any run, _ one char, \% and \_ literal; case-insensitive."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(re.escape(nxt if nxt in "%_\\'\"" else _decode_escape(nxt)))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _decode_escape(ch: str) -> str:
    return {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}.get(ch, ch)


def sort_key(value: Any, *, descending: bool, nulls_last: bool) -> tuple[int, Any]:
    """Key for a stable sort; null placement is independent of the direction, as in SOQL."""
    if value is None:
        # The sort for DESC runs reversed, so flip where nulls go to keep NULLS FIRST/LAST literal.
        return (1 if nulls_last != descending else -1, 0)
    return (0, value)
