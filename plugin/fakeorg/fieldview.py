"""An sObject as one user at one API version sees it: fields hidden by field-level security or
added in a later version are gone from the describe and unknown to queries (INVALID_FIELD)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .table import Field, Record, SObjectTable


class FieldView:
    """Wraps an `SObjectTable`, hiding the fields named (lower case) in `hidden`."""

    def __init__(self, table: SObjectTable, hidden: frozenset[str]) -> None:
        self._table = table
        self._hidden = hidden
        source = table.describe
        self._describe = {
            **source,
            "fields": [f for f in source.get("fields") or () if str(f.get("name", "")).lower() not in hidden],
        }

    def __getattr__(self, name: str) -> Any:
        # Whatever else a record source offers (counts, generators) passes through unchanged.
        return getattr(self._table, name)

    @property
    def name(self) -> str:
        return self._table.name

    @property
    def describe(self) -> dict[str, Any]:
        return self._describe

    def field(self, name: str) -> Field | None:
        return None if name.lower() in self._hidden else self._table.field(name)

    def fields(self) -> list[Field]:
        return [f for f in self._table.fields() if f.name.lower() not in self._hidden]

    def relationship(self, name: str) -> Field | None:
        found = self._table.relationship(name)
        return None if found is None or found.name.lower() in self._hidden else found

    def records(self) -> Iterator[Record]:
        return self._table.records()

    def get(self, record_id: str) -> Record | None:
        return self._table.get(record_id)

    def blob_path(self, record_id: str, field_name: str) -> Path | None:
        return None if field_name.lower() in self._hidden else self._table.blob_path(record_id, field_name)
