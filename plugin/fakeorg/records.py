"""Reading `records/<Object>.json|csv` into JSON-typed records that keep their literal text."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from . import jsonlit
from .errors import FakeOrgError
from .jsonlit import Lit
from .table import NUMBER_TYPES, Field, Record

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def load_records(path: Path, fields: list[Field]) -> list[Record]:
    """Records of one object from a `.json` (list or query body) or `.csv` file.

    Keys are normalised to the describe's casing so lookups and output agree with it.

    Raises:
        FakeOrgError: the file cannot be parsed or a value does not fit its field type.
    """
    canonical = {f.name.lower(): f.name for f in fields}
    by_name = {f.name.lower(): f for f in fields}
    rows = _read_csv(path, by_name) if path.suffix == ".csv" else _read_json(path)
    return [{canonical.get(k.lower(), k): v for k, v in row.items() if k != "attributes"} for row in rows]


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        body = jsonlit.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeOrgError(f"{path}: not valid JSON ({exc}); fix the file or remove it") from exc
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        body = body["records"]
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise FakeOrgError(f"{path}: expected a JSON list of record objects or a query body with 'records'")
    return body


def _read_csv(path: Path, fields: dict[str, Field]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # newline="" keeps CR/LF inside quoted values exactly; utf-8-sig drops an Excel BOM.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            return rows
        for line_no, values in enumerate(reader, start=2):
            if len(values) != len(header):
                raise FakeOrgError(f"{path}:{line_no}: {len(values)} values for {len(header)} header columns")
            row: dict[str, Any] = {}
            for name, text in zip(header, values, strict=True):
                field = fields.get(name.lower())
                row[name] = _csv_value(text, field, where=f"{path}:{line_no} column {name!r}")
            rows.append(row)
    return rows


def _csv_value(text: str, field: Field | None, *, where: str) -> Any:
    """CSV text to a JSON value by the field's describe type ("" is null)."""
    if text == "":
        return None
    kind = field.type if field else "string"
    if kind in NUMBER_TYPES:
        if not jsonlit.is_number_literal(text):
            raise FakeOrgError(f"{where}: {text!r} is not a number literal (write it as JSON would)")
        return Lit(text)
    if kind == "boolean":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise FakeOrgError(f"{where}: {text!r} is not a boolean (use true/false)")
    return text
