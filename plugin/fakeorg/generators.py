"""Synthetic rows for org.json `generators`: row i of an object is a pure function of (seed, i).

Nothing is generated at load time and nothing is kept: a field value is computed when a query
asks for it, so a million-row object costs no memory until served, and any row can be read by
index (id -> index is arithmetic), which is what locator paging and parent lookups need.

    "generators": {"Account": {"count": 1000000, "seed": 7, "deleted_every": 50,
                               "null_every": 5, "start": "2020-01-01T00:00:00Z",
                               "end": "2024-12-31T00:00:00Z"}}

Ids: key prefix + "0G" + 10-digit (index + 1) + checksum, so they sort by index and never
collide with ids made by `sf_id` (all digits) for records/ files without an Id.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import FakeOrgError
from .ids import sf_id, to18
from .values import Stamp, parse_datetime

MASK = (1 << 64) - 1
MAX_COUNT = 10**10 - 1
GENERATOR_KEYS = frozenset({"count", "seed", "deleted_every", "null_every", "start", "end"})
ADMIN_USER_ID = sf_id("005", 1)
_ID_MARK = "0G"
MAX_EDIT_AGE = 365 * 86400 + 60  # SystemModstamp - CreatedDate never exceeds this (see Timeline)
_DEFAULT_START = "2020-01-01T00:00:00Z"
_DEFAULT_END = "2024-12-31T00:00:00Z"


def mix(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


@dataclass(frozen=True)
class GeneratorSpec:
    """One object's generator settings from org.json (validated)."""

    count: int
    seed: int = 0
    deleted_every: int = 50  # one row in N is in the recycle bin (IsDeleted = true); 0 = none
    null_every: int = 5  # one optional value in N is null; 0 = never null
    start: int = 0  # epoch seconds: CreatedDate/LastModifiedDate/SystemModstamp window
    end: int = 0


def parse_generators(raw: Any, where: str) -> dict[str, GeneratorSpec]:
    """The `generators` section keyed by lower-cased object name.

    Raises:
        FakeOrgError: not an object of objects, unknown keys, or values out of range.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise FakeOrgError(f'{where}: "generators" must be an object like {{"Account": {{"count": 1000}}}}')
    specs: dict[str, GeneratorSpec] = {}
    for name, body in raw.items():
        specs[str(name).lower()] = _parse_spec(str(name), body, where)
    return specs


def _parse_spec(name: str, body: Any, where: str) -> GeneratorSpec:
    here = f'{where}: generators["{name}"]'
    if not isinstance(body, dict):
        raise FakeOrgError(f'{here} must be an object with at least "count"')
    unknown = sorted(set(body) - GENERATOR_KEYS)
    if unknown:
        raise FakeOrgError(f"{here} has unknown keys {unknown}; allowed: {sorted(GENERATOR_KEYS)}")

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FakeOrgError(f"{here}.{key} must be an integer in {low}..{high}, got {value!r}")
        return value

    if "count" not in body:
        raise FakeOrgError(f'{here} needs "count" (rows to generate)')
    start = _instant(body.get("start", _DEFAULT_START), f"{here}.start")
    end = _instant(body.get("end", _DEFAULT_END), f"{here}.end")
    if end <= start:
        raise FakeOrgError(f"{here}: end must be after start")
    return GeneratorSpec(
        count=integer("count", 0, 0, MAX_COUNT),
        seed=integer("seed", 0, 0, MASK),
        deleted_every=integer("deleted_every", 50, 0, MAX_COUNT),
        null_every=integer("null_every", 5, 0, 1_000_000),
        start=start,
        end=end,
    )


def _instant(value: Any, where: str) -> int:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise FakeOrgError(f"{where} must be a datetime like 2020-01-01T00:00:00Z, got {value!r}")
    return int(parsed.timestamp())


def deleted_phase(spec: GeneratorSpec) -> int:
    """Row i is deleted when i % deleted_every == this phase (so deletions spread evenly)."""
    return mix(spec.seed) % spec.deleted_every if spec.deleted_every else 0


def generated_id(prefix: str, index: int) -> str:
    """The 18-char id of generated row `index` (0-based)."""
    return to18(f"{prefix}{_ID_MARK}{index + 1:010d}")


def generated_index(prefix: str, record_id: str) -> int | None:
    """Inverse of `generated_id` (15 or 18 chars); None when the id is not in the generated space."""
    if len(record_id) not in (15, 18) or record_id[:3] != prefix or record_id[3:5] != _ID_MARK:
        return None
    digits = record_id[5:15]
    if not digits.isdigit():
        return None
    if len(record_id) == 18 and to18(record_id[:15]) != record_id:
        return None
    return int(digits) - 1


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.cache
def _day(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=days)).strftime("%Y-%m-%dT")


def format_datetime(epoch: int) -> Stamp:
    """REST form of an instant (2024-01-31T12:00:00.000+0000) that remembers the instant."""
    days, seconds = divmod(epoch, 86400)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_day(days)}{hours:02d}:{minutes:02d}:{secs:02d}.000+0000"
    return Stamp(text, _EPOCH + dt.timedelta(seconds=epoch))


class Timeline:
    """CreatedDate <= LastModifiedDate <= SystemModstamp per row, spread over [start, end].

    CreatedDate grows with the index (row i falls in the i-th slice of the window), so a window
    of time maps to a contiguous index range for creation and incremental filters pick subsets.
    """

    def __init__(self, spec: GeneratorSpec) -> None:
        self.start, self.end, self.count = spec.start, spec.end, max(spec.count, 1)
        self._salt = mix(spec.seed ^ 0x5EED_71E)
        self._slot = max(1, (self.end - self.start) // self.count)

    def created(self, index: int) -> int:
        base = self.start + (self.end - self.start) * index // self.count
        return min(self.end, base + mix(self._salt + index) % self._slot)

    def last_modified(self, index: int) -> int:
        created = self.created(index)
        spin = mix(self._salt ^ (index * 0x2545F4914F6CDD1D & MASK))
        if spin % 4 == 0:
            return created  # never edited since creation
        return min(self.end, created + (spin >> 8) % (365 * 86400))

    def system_modstamp(self, index: int) -> int:
        return min(self.end, self.last_modified(index) + mix(self._salt + 3 * index + 1) % 61)

    def modstamp_candidates(self, start: int, end: int) -> range:
        """Indexes whose SystemModstamp can lie in [start, end): creation before `end` and not
        more than MAX_EDIT_AGE before `start` (CreatedDate grows with the index); none after `end`."""
        if start > self.end:
            return range(self.count, self.count)
        return range(self.first_created_at_or_after(start - MAX_EDIT_AGE), self.first_created_at_or_after(end))

    def first_created_at_or_after(self, instant: int) -> int:
        """The smallest index whose CreatedDate >= instant (count when none)."""
        low, high = 0, self.count
        while low < high:
            mid = (low + high) // 2
            if self.created(mid) >= instant:
                high = mid
            else:
                low = mid + 1
        return low


ValueFn = Callable[[int], Any]
