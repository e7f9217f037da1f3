"""Building frozen dataclass instances on hot paths, where the generated ``__init__`` costs too much.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; in CPython 3.11
that costs more than parsing an event's JSON. ``build`` fills the instance dict in one step. It
runs no ``__init__`` or ``__post_init__`` and fills in no defaults, so callers pass every field by
name, and it refuses classes with a ``__post_init__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

_FIELD_COUNTS: dict[type, int] = {}


def _field_count(cls: type) -> int:
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__; build it with its constructor")
    return len(fields(cls))


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """Return what ``cls(**values)`` returns for a frozen dataclass, without calling ``__init__``.

    Only the number of values is checked here (the names are the caller's promise, pinned by
    tests that compare built and constructed instances).

    Raises:
        TypeError: ``values`` does not hold one value per field, or ``cls`` has a ``__post_init__``.
    """
    count = _FIELD_COUNTS.get(cls)
    if count is None:
        count = _FIELD_COUNTS[cls] = _field_count(cls)
    if len(values) != count:
        raise TypeError(f"{cls.__name__} needs one value for each of its {count} fields, got {len(values)}")
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance
