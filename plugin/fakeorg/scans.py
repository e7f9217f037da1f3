"""Lazy query results: the matching rows of a table as a sequence that is never materialised.

A `MatchedRows` walks the table's positions (file rows, then generated rows) and keeps only
checkpoints (match offset -> where to resume), so a cursor over a million generated rows holds a
few kilobytes and any page can be served again by resuming from the nearest checkpoint. Counts
use closed forms when the filter is only an Id range (generated ids ascend with the index and
deletions are periodic), otherwise one counting pass that also leaves checkpoints behind.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol, overload

from .table import GeneratedRows, Record, SObjectTable
from .values import comparable, compare

MARK_EVERY = 1000
Token = Any


class RowScan(Protocol):
    """Rows in a fixed order; `iterate(token)` resumes where a previous walk stopped."""

    @property
    def start(self) -> Token: ...
    def iterate(self, token: Token) -> Iterator[tuple[Token, Record]]: ...


class Chain(Sequence[int]):
    """Concatenated ranges of positions, indexable without building a list."""

    def __init__(self, parts: Sequence[range]) -> None:
        self._parts = [p for p in parts if len(p)]
        self._ends: list[int] = []
        total = 0
        for part in self._parts:
            total += len(part)
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...
    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        part = bisect.bisect_right(self._ends, index)
        before = self._ends[part - 1] if part else 0
        return self._parts[part][index - before]

    def iter_from(self, index: int) -> Iterator[int]:
        """Positions from `index` on, walking the ranges directly."""
        before = 0
        for part, end in zip(self._parts, self._ends, strict=True):
            if index < end:
                yield from part[max(0, index - before) :]
            before = end


@dataclass
class PositionScan:
    """Rows at `positions` in that order; the token is the index into `positions`."""

    table: SObjectTable
    positions: Sequence[int]

    @property
    def start(self) -> Token:
        return 0

    def iterate(self, token: Token) -> Iterator[tuple[Token, Record]]:
        row, start = self.table.row, int(token)
        positions = self.positions
        walk = positions.iter_from(start) if isinstance(positions, Chain) else islice(positions, start, None)
        for k, pos in enumerate(walk, start + 1):
            yield k, row(pos)


@dataclass
class IdOrderScan:
    """File rows sorted by id merged with a range of generated rows (already in id order)."""

    table: SObjectTable
    file_positions: list[int]  # sorted by id key, ascending
    file_keys: list[str]
    generated: range  # generated indexes
    descending: bool

    @property
    def start(self) -> Token:
        return (0, 0)

    def iterate(self, token: Token) -> Iterator[tuple[Token, Record]]:
        a, b = token
        files, keys, gen = self.file_positions, self.file_keys, self.generated
        source = self.table.generated
        offset = self.table.file_count
        if self.descending:
            files, keys, gen = files[::-1], keys[::-1], gen[::-1]
        while a < len(files) or b < len(gen):
            take_file = b >= len(gen)
            if not take_file and a < len(files) and source is not None:
                gen_key = source.id15(gen[b])
                take_file = keys[a] > gen_key if self.descending else keys[a] < gen_key
            if take_file:
                a += 1
                yield (a, b), self.table.row(files[a - 1])
            else:
                b += 1
                yield (a, b), self.table.row(offset + gen[b - 1])


class MatchedRows(Sequence[Record]):
    """The rows a query matches, in order, after OFFSET and LIMIT; computed on demand."""

    def __init__(
        self,
        scan: RowScan,
        accept: Callable[[Record], bool] | None,
        *,
        skip: int = 0,
        limit: int | None = None,
        quick_count: Callable[[], int] | None = None,
    ) -> None:
        self._scan = scan
        self._accept = accept
        self._skip = skip
        self._limit = limit
        self._quick_count = quick_count
        self._marks: dict[int, Token] = {0: scan.start}
        self._mark_list = [0]
        self._raw_total: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        if self._raw_total is None:
            quick = self._quick_count
            self._raw_total = quick() if quick is not None else sum(1 for _ in self._walk(0))
        available = max(0, self._raw_total - self._skip)
        return available if self._limit is None else min(self._limit, available)

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            if index.step not in (None, 1) or (index.start or 0) < 0 or (index.stop or 0) < 0:
                return list(self)[index]
            start = index.start or 0
            stop = index.stop if index.stop is not None else len(self)
            return list(self.iter_from(start, stop))
        if index < 0:
            index += len(self)
        found = list(self.iter_from(index, index + 1)) if index >= 0 else []
        if not found:
            raise IndexError(index)
        return found[0]

    def __iter__(self) -> Iterator[Record]:
        return self.iter_from(0)

    def iter_from(self, start: int, stop: int | None = None) -> Iterator[Record]:
        """Rows start..stop-1 streamed one at a time (stop None: to the end)."""
        if self._limit is not None:
            stop = self._limit if stop is None else min(stop, self._limit)
        if stop is not None and stop <= start:
            return
        raw_stop = None if stop is None else self._skip + stop
        for index, record, after in self._walk(self._skip + start):
            yield record
            if raw_stop is not None and index + 1 >= raw_stop:
                self._mark(index + 1, after)  # the next page resumes exactly here
                return

    def _walk(self, raw_from: int) -> Iterator[tuple[int, Record, Token]]:
        with self._lock:
            at = self._mark_list[bisect.bisect_right(self._mark_list, raw_from) - 1]
            token = self._marks[at]
        accept, raw = self._accept, at
        for after, record in self._scan.iterate(token):
            if accept is not None and not accept(record):
                continue
            index, raw = raw, raw + 1
            if raw % MARK_EVERY == 0:
                self._mark(raw, after)
            if index >= raw_from:
                yield index, record, after
        self._raw_total = raw  # reached only when the scan ran to its end

    def _mark(self, raw: int, token: Token) -> None:
        with self._lock:
            if raw not in self._marks:
                self._marks[raw] = token
                bisect.insort(self._mark_list, raw)


def id_range(table: SObjectTable, bounds: Sequence[tuple[str, Any]]) -> range:
    """Generated indexes whose Id satisfies every (op, comparable value) bound; all when none."""
    source = table.generated
    if source is None:
        return range(0)
    low, high = 0, source.count
    for op, value in bounds:
        if op in (">", ">=", "="):
            low = max(low, _first(source, ">=" if op == "=" else op, value))
        if op in ("<", "<=", "="):
            high = min(high, _first(source, {"<": ">=", "<=": ">", "=": ">"}[op], value))
    return range(low, max(low, high))


def stamp_range(table: SObjectTable, bounds: Sequence[tuple[str, Any]]) -> range:
    """Generated indexes that can satisfy every (op, aware datetime) bound on an audit datetime.

    A superset: CreatedDate grows with the index and SystemModstamp/LastModifiedDate trail it by
    less than a year (generators.MAX_EDIT_AGE), so rows far outside the window are skipped.
    """
    source = table.generated
    if source is None:
        return range(0)
    if not bounds:
        return range(source.count)
    low, high = -(1 << 62), 1 << 62
    for op, instant in bounds:
        second = int(instant.timestamp() // 1)
        if op in (">", ">=", "="):
            low = max(low, second)
        if op in ("<", "<=", "="):
            high = min(high, second + 1)
    return source.modstamp_candidates(low, high) if low < high else range(0)


def _first(source: GeneratedRows, op: str, value: Any) -> int:
    """Smallest index whose id satisfies `id <op> value` (ids ascend, so the condition is monotone)."""
    low, high = 0, source.count
    while low < high:
        mid = (low + high) // 2
        if compare(source.id15(mid), op, value):
            high = mid
        else:
            low = mid + 1
    return low


def file_id_order(table: SObjectTable) -> tuple[list[int], list[str]]:
    """File row positions sorted by their comparable id, with those keys."""
    keyed = sorted((str(comparable("id", table.row(p).get("Id")) or ""), p) for p in range(table.file_count))
    return [p for _, p in keyed], [k for k, _ in keyed]
