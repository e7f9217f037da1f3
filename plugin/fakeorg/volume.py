"""Tables that add generated rows (org.json `generators`) after the records/ file rows.

Combination rule: positions 0..n-1 are the file rows in file order, then `count` generated rows
in index order. Generated ids live in their own id space (`<prefix>0G...`); a file record whose
id falls into it is refused at load, so the two sets never clash.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

from .errors import FakeOrgError
from .generators import GeneratorSpec, Timeline, deleted_phase, generated_id, generated_index
from .synthetic import PoolFn, build_value_fns
from .table import GeneratedRows, MemoryTable, Record, SObjectTable


class GeneratedRow(dict[str, Any]):
    """A row whose field values are computed on first access (and then kept for this row only)."""

    __slots__ = ("_fns", "_index")

    def __init__(self, fns: Mapping[str, Any], index: int) -> None:
        super().__init__()
        self._fns = fns
        self._index = index

    def __missing__(self, key: str) -> Any:
        fn = self._fns.get(key)
        if fn is None:
            raise KeyError(key)
        value = fn(self._index)
        self[key] = value
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class RowGenerator:
    """`count` synthetic rows of one object; row i is a pure function of (seed, i)."""

    def __init__(self, describe: Mapping[str, Any], spec: GeneratorSpec, pool: PoolFn) -> None:
        self.spec = spec
        self.prefix = str(describe.get("keyPrefix") or "000")
        self._fns = build_value_fns(describe, spec, pool, self.prefix)
        self._deletes = "IsDeleted" in self._fns and spec.deleted_every > 0
        self._phase = deleted_phase(spec)
        self.timeline = Timeline(spec)

    @property
    def count(self) -> int:
        return self.spec.count

    def row(self, index: int) -> Record:
        return GeneratedRow(self._fns, index)

    def id15(self, index: int) -> str:
        return generated_id(self.prefix, index)[:15]

    def index_of(self, record_id: str) -> int | None:
        index = generated_index(self.prefix, record_id)
        return index if index is not None and index < self.count else None

    def deleted_indexes(self, window: range) -> range:
        """The deleted rows among `window` (a step-1 range): every `deleted_every`-th index."""
        if not self._deletes or not window:
            return range(0)
        every = self.spec.deleted_every
        first = window.start + (self._phase - window.start) % every
        return range(first, window.stop, every)

    def modstamp_candidates(self, start: int, end: int) -> range:
        """Rows whose SystemModstamp may lie in [start, end) (epoch seconds)."""
        if "SystemModstamp" not in self._fns:
            return range(self.count)
        window = self.timeline.modstamp_candidates(start, end)
        return range(window.start, min(window.stop, self.count))

    def deleted_between(self, low: int, high: int) -> int:
        """How many of the rows low..high-1 are deleted (closed form: one in `deleted_every`)."""
        if not self._deletes or high <= low:
            return 0
        every, phase = self.spec.deleted_every, self._phase
        return (high - 1 - phase) // every - (low - 1 - phase) // every


class VolumeTable(MemoryTable):
    """File records (if any) followed by generated rows; nothing generated until asked for.

    Raises (from the constructor):
        FakeOrgError: a file record's id lies in the generated id space.
    """

    def __init__(self, describe: dict[str, Any], records: list[Record], spec: GeneratorSpec, pool: PoolFn) -> None:
        super().__init__(describe, records)
        self._gen = RowGenerator(describe, spec, pool)
        for record in records:
            record_id = str(record.get("Id") or "")
            if generated_index(self._gen.prefix, record_id) is not None:
                raise FakeOrgError(
                    f"{self.name} record {record_id} uses the generated id space ({self._gen.prefix}0G...); "
                    "give it another id or drop the generator"
                )

    def records(self) -> Iterator[Record]:
        generated = (self._gen.row(i) for i in range(self._gen.count))
        return chain(super().records(), generated)

    def get(self, record_id: str) -> Record | None:
        found = super().get(record_id)
        if found is not None:
            return found
        index = self._gen.index_of(record_id)
        return self._gen.row(index) if index is not None else None

    def size(self) -> int:
        return self.file_count + self._gen.count

    def row(self, pos: int) -> Record:
        files = self.file_count
        return super().row(pos) if pos < files else self._gen.row(pos - files)

    @property
    def generated(self) -> GeneratedRows:
        return self._gen


def reference_pool(tables: Mapping[str, SObjectTable]) -> PoolFn:
    """Picks a reference value: the id of row `h % size` of the first target object that has rows.

    Looks the tables up when a value is asked for, so it sees every object of the loaded org.
    """

    def pick(targets: tuple[str, ...], h: int) -> str | None:
        for target in targets:
            table = tables.get(target.lower())
            if table is not None and table.size() > 0:
                value = table.row(h % table.size()).get("Id")
                return str(value) if value else None
        return None

    return pick
