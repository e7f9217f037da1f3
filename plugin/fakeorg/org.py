"""Loading an org folder (DESIGN.md "Fake org") into a `FakeOrg`: describes, records, blobs, settings.

org.json keys read here and by the server (all optional): org_id (15/18 chars, 00D...), name,
page_size, limits ({"DailyApiRequests": N} or {"DailyApiRequests": {"Max": N, "Remaining": R}},
likewise the Bulk limits), organization (values overriding the built-in Organization row),
username, password, security_token, client_id, client_secret (otherwise generated per start),
jwt_certificate (PEM certificate or public key accepted for JWT bearer logins), quirks (quirks.py),
generators (synthetic rows per object, see generators.py; they follow the object's records/ file
rows), bulk (Bulk API 2.0 knobs, see bulk.py), response_cache (a folder for rendered query and
Bulk results pages, see cache.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import jsonlit
from .describes import global_entry
from .errors import FakeOrgError
from .generators import parse_generators
from .ids import org_id_for, sf_id, to18
from .organization import organization_describe, organization_record
from .quirks import Quirks
from .records import load_records
from .table import MemoryTable, Record, SObjectTable
from .volume import VolumeTable, reference_pool

log = logging.getLogger(__name__)

DEFAULT_API_MAX = 15000


@dataclass
class FakeOrg:
    """Everything the server serves, loaded once; tables are looked up case-insensitively."""

    root: Path
    org_id: str
    name: str
    settings: dict[str, Any]
    tables: dict[str, SObjectTable]
    global_body: dict[str, Any] = field(default_factory=dict)
    quirks: Quirks = field(default_factory=Quirks)

    def table(self, name: str) -> SObjectTable | None:
        """The sObject called `name` (any casing), or None."""
        return self.tables.get(name.lower())

    def find(self, record_id: str, object_names: tuple[str, ...]) -> tuple[SObjectTable, Record] | None:
        """The record with this id among `object_names` (polymorphic lookups try each)."""
        for object_name in object_names:
            table = self.table(object_name)
            if table is not None:
                record = table.get(record_id)
                if record is not None:
                    return table, record
        return None

    @property
    def page_size(self) -> int | None:
        """Forced query page size from org.json, if any."""
        value = self.settings.get("page_size")
        return int(value) if value is not None else None

    def api_limit(self, name: str = "DailyApiRequests") -> tuple[int, int]:
        """(Max, Remaining at start) of a limit; org.json `limits` may give a number or {Max, Remaining}."""
        raw = (self.settings.get("limits") or {}).get(name)
        default = DEFAULT_API_MAX if name == "DailyApiRequests" else _OTHER_LIMITS.get(name, 0)
        if raw is None:
            return default, default
        if isinstance(raw, dict):
            maximum = int(raw.get("Max", default))
            return maximum, int(raw.get("Remaining", maximum))
        return int(raw), int(raw)


_OTHER_LIMITS = {
    "DailyBulkApiRequests": 5000,
    "DailyBulkV2QueryJobs": 10000,
    "DailyBulkV2QueryFileStorageMB": 976562,
}


def load_org(root: Path) -> FakeOrg:
    """Read an org folder.

    Raises:
        FakeOrgError: the folder is missing, has no describes, or a file cannot be used; the
            message names the file and the fix.
    """
    root = Path(root)
    if not root.is_dir():
        raise FakeOrgError(f"org folder {root} does not exist; pass a folder with describe/<Object>.json files")
    settings = _read_settings(root / "org.json")
    describe_dir = root / "describe"
    describe_files = sorted(p for p in describe_dir.glob("*.json") if not p.name.startswith("_"))
    if not describe_files:
        raise FakeOrgError(f"{describe_dir} holds no <Object>.json describe files; an org needs at least one")

    org_id = _org_id(settings, root)
    name = str(settings.get("name") or f"Fake Org ({root.name})")
    tables: dict[str, SObjectTable] = {}
    generators = parse_generators(settings.get("generators"), str(root / "org.json"))
    if "organization" in generators:
        raise FakeOrgError(f"{root / 'org.json'}: Organization always has exactly one row; drop its generator")
    pool = reference_pool(tables)
    for path in describe_files:
        describe = _read_describe(path)
        records = _read_object_records(root, describe)
        spec = generators.pop(describe["name"].lower(), None)
        key = describe["name"].lower()
        tables[key] = VolumeTable(describe, records, spec, pool) if spec else MemoryTable(describe, records)
    if generators:
        raise FakeOrgError(
            f"{root / 'org.json'}: generators for {sorted(generators)} have no describe/<Object>.json; "
            "add the describe or remove the generator"
        )

    if "organization" not in tables:
        describe = organization_describe()
        records = _read_object_records(root, describe) or [
            organization_record(org_id, name, dict(settings.get("organization") or {}))
        ]
        tables["organization"] = MemoryTable(describe, records)

    _check_orphan_records(root, tables)
    _attach_blobs(root, tables)
    global_body = _global_body(describe_dir / "_global.json", tables)
    quirks = Quirks.from_settings(settings)
    return FakeOrg(
        root=root, org_id=org_id, name=name, settings=settings, tables=tables, global_body=global_body, quirks=quirks
    )


def _read_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeOrgError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(settings, dict):
        raise FakeOrgError(f"{path}: expected a JSON object of settings")
    return settings


def _org_id(settings: dict[str, Any], root: Path) -> str:
    raw = settings.get("org_id")
    if raw is None:
        return org_id_for(root.name)
    text = str(raw)
    if not text.startswith("00D") or len(text) not in (15, 18) or not text.isalnum():
        raise FakeOrgError(f"org.json org_id {text!r} is not a 15/18-char id starting with 00D")
    # Salesforce's 18-char form carries a checksum of the first 15; a wrong one would make the
    # identity the fake serves disagree with the org id inside its session tokens.
    if to18(text[:15]) != to18(text):
        raise FakeOrgError(
            f"org.json org_id {text!r} has a wrong 18-char checksum: "
            f"write {to18(text[:15])!r} or the 15-char {text[:15]!r}"
        )
    return to18(text)


def _read_describe(path: Path) -> dict[str, Any]:
    try:
        describe = jsonlit.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeOrgError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(describe, dict) or not isinstance(describe.get("name"), str):
        raise FakeOrgError(f"{path}: not an sObject describe body (needs 'name' and 'fields')")
    if not isinstance(describe.get("fields"), list):
        raise FakeOrgError(f"{path}: describe of {describe['name']} has no 'fields' list")
    if describe["name"].lower() != path.stem.lower():
        log.warning("%s describes %s; serving it as %s", path, describe["name"], describe["name"])
    return describe


def _read_object_records(root: Path, describe: dict[str, Any]) -> list[Record]:
    name = describe["name"]
    candidates = [p for p in (root / "records").glob("*") if p.stem.lower() == name.lower()]
    candidates = [p for p in candidates if p.suffix in (".json", ".csv")]
    if len(candidates) > 1:
        raise FakeOrgError(f"{name} has several record files ({candidates}); keep one (.json or .csv)")
    if not candidates:
        return []
    table = MemoryTable(describe, [])
    records = load_records(candidates[0], table.fields())
    prefix = str(describe.get("keyPrefix") or "000")
    for n, record in enumerate(records, start=1):
        if not record.get("Id"):
            record["Id"] = sf_id(prefix, n)
    return records


def _check_orphan_records(root: Path, tables: dict[str, SObjectTable]) -> None:
    for path in sorted((root / "records").glob("*")):
        if path.suffix in (".json", ".csv") and path.stem.lower() not in tables:
            raise FakeOrgError(f"{path} has no describe/{path.stem}.json; add the describe or remove the records")


def _attach_blobs(root: Path, tables: dict[str, SObjectTable]) -> None:
    for path in sorted((root / "blobs").glob("*/*/*")):
        if not path.is_file():
            continue
        object_dir, record_id, field_name = path.parent.parent.name, path.parent.name, path.name
        table = tables.get(object_dir.lower())
        if not isinstance(table, MemoryTable):
            raise FakeOrgError(f"{path}: no describe/{object_dir}.json for this blob")
        field = table.field(field_name)
        if field is None or field.type != "base64":
            raise FakeOrgError(f"{path}: {object_dir}.{field_name} is not a base64 field in the describe")
        table.add_blob(record_id, field.name, path)


def _global_body(path: Path, tables: dict[str, SObjectTable]) -> dict[str, Any]:
    """describeGlobal: the folder's _global.json limited to described objects, else synthesised."""
    entries = {name: global_entry(table.describe) for name, table in tables.items()}
    if not path.exists():
        return {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [entries[k] for k in sorted(entries)]}
    try:
        body = jsonlit.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FakeOrgError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(body, dict) or not isinstance(body.get("sobjects"), list):
        raise FakeOrgError(f"{path}: not a describeGlobal body (needs 'sobjects')")
    kept, dropped = [], []
    for entry in body["sobjects"]:
        key = str(entry.get("name", "")).lower()
        if key in entries:
            kept.append(entry)
            entries.pop(key)
        else:
            dropped.append(str(entry.get("name")))
    if dropped:
        # A client would describe and query these and fail; serve only what the fake can answer.
        log.warning("%s lists %d objects without a describe file; not served: %s", path, len(dropped), dropped)
    kept.extend(entries[k] for k in sorted(entries))
    return {**body, "sobjects": kept}
