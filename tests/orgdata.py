"""Reading a fake-org folder the way the checker does: number literals kept as their exact text."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Lit(str):
    """A JSON number literal, as written in the records file."""


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Lit, parse_int=Lit)


@dataclass
class OrgObject:
    name: str
    fields: list[dict[str, Any]]
    records: list[dict[str, Any]]


def load_objects(org: Path) -> dict[str, OrgObject]:
    objects = {}
    for path in sorted((org / "describe").glob("*.json")):
        if path.name.startswith("_"):
            continue
        describe = json.loads(path.read_text(encoding="utf-8"))
        name = describe["name"]
        rec_path = org / "records" / f"{name}.json"
        csv_path = org / "records" / f"{name}.csv"
        records: Any = []
        if rec_path.exists():
            records = load_json(rec_path)
        elif csv_path.exists():
            with open(csv_path, encoding="utf-8", newline="") as fh:
                records = [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]
        if isinstance(records, dict):
            records = records["records"]
        records = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
        objects[name] = OrgObject(name, describe["fields"], records)
    return objects


def blobs(org: Path) -> dict[tuple[str, str, str], str]:
    """(object, id, field) -> sha256 of the body."""
    out = {}
    root = org / "blobs"
    for p in sorted(root.glob("*/*/*")) if root.is_dir() else []:
        out[(p.parts[-3], p.parts[-2], p.parts[-1])] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def expected_cell(value: Any, ftype: str | None = None) -> str:
    """What the CSV must hold for an org value: exact text, no normalisation.

    Booleans are true/false whatever case a CSV records file wrote them in (the API sends JSON booleans).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if ftype == "boolean" and str(value).lower() in ("true", "false"):
        return str(value).lower()
    return str(value)
