"""One sObject of the fake org: its describe, field lookup and records behind a small interface.

The app and the SOQL evaluator only talk to `SObjectTable`, so a generated or streaming source
(millions of synthetic rows) can replace the in-memory list without touching them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .ids import id_key

Record = dict[str, Any]

NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
ID_TYPES = frozenset({"id", "reference"})


@dataclass(frozen=True)
class Field:
    """What the fake needs to know about one describe field."""

    name: str
    type: str
    relationship_name: str | None = None
    reference_to: tuple[str, ...] = ()
    filterable: bool = True
    sortable: bool = True

    @classmethod
    def from_describe(cls, entry: dict[str, Any]) -> Field:
        """Build from a describe `fields[]` entry."""
        return cls(
            name=str(entry["name"]),
            type=str(entry.get("type") or "string"),
            relationship_name=entry.get("relationshipName") or None,
            reference_to=tuple(str(t) for t in entry.get("referenceTo") or ()),
            filterable=entry.get("filterable", True) is not False,
            sortable=entry.get("sortable", True) is not False,
        )


class SObjectTable(Protocol):
    """The read interface every record source offers.

    Rows have positions 0..size()-1: first the records/ file rows (`file_count` of them), then
    generated ones; `row(pos)` is random access so query cursors can page without copying.
    """

    @property
    def name(self) -> str: ...
    @property
    def describe(self) -> dict[str, Any]: ...
    def field(self, name: str) -> Field | None: ...
    def fields(self) -> list[Field]: ...
    def relationship(self, name: str) -> Field | None: ...
    def records(self) -> Iterator[Record]: ...
    def get(self, record_id: str) -> Record | None: ...
    def blob_path(self, record_id: str, field_name: str) -> Path | None: ...
    def size(self) -> int: ...
    def row(self, pos: int) -> Record: ...
    @property
    def file_count(self) -> int: ...
    @property
    def generated(self) -> GeneratedRows | None: ...


class GeneratedRows(Protocol):
    """Synthetic rows behind the file rows: ids ascend with the index, deletions are periodic."""

    @property
    def count(self) -> int: ...
    def row(self, index: int) -> Record: ...
    def id15(self, index: int) -> str: ...
    def deleted_between(self, low: int, high: int) -> int: ...
    def deleted_indexes(self, window: range) -> range: ...
    def modstamp_candidates(self, start: int, end: int) -> range: ...


class MemoryTable:
    """Records held in a list, indexed by the 15-char id; blobs indexed by (id, field)."""

    def __init__(self, describe: dict[str, Any], records: list[Record]) -> None:
        self._describe = describe
        self._fields = [Field.from_describe(f) for f in describe.get("fields") or ()]
        self._by_name = {f.name.lower(): f for f in self._fields}
        self._by_relationship = {f.relationship_name.lower(): f for f in self._fields if f.relationship_name}
        self._records = records
        self._by_id = {id_key(str(r["Id"])): r for r in records if r.get("Id")}
        self._blobs: dict[tuple[str, str], Path] = {}

    @property
    def name(self) -> str:
        return str(self._describe["name"])

    @property
    def describe(self) -> dict[str, Any]:
        return self._describe

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name.lower())

    def fields(self) -> list[Field]:
        return list(self._fields)

    def relationship(self, name: str) -> Field | None:
        return self._by_relationship.get(name.lower())

    def records(self) -> Iterator[Record]:
        return iter(self._records)

    def get(self, record_id: str) -> Record | None:
        return self._by_id.get(id_key(record_id))

    def add_blob(self, record_id: str, field_name: str, path: Path) -> None:
        """Register the file holding the bytes of a base64 field."""
        self._blobs[(id_key(record_id), field_name.lower())] = path

    def blob_path(self, record_id: str, field_name: str) -> Path | None:
        return self._blobs.get((id_key(record_id), field_name.lower()))

    def size(self) -> int:
        return len(self._records)

    def row(self, pos: int) -> Record:
        return self._records[pos]

    @property
    def file_count(self) -> int:
        return len(self._records)

    @property
    def generated(self) -> GeneratedRows | None:
        return None

    def __len__(self) -> int:
        return self.size()
