"""ContentDocumentLink: exported by ``WHERE ContentDocumentId IN (...)`` queries, one per chunk.

Salesforce (and the fake) refuse the object unfiltered. The parent ids come from a cheap
``SELECT Id FROM ContentDocument`` (else from ContentVersion.ContentDocumentId), so every link of
every file is captured, in full and incremental backups alike: ``files/index.csv`` needs every link
of the files it lists, and link rows are small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugin.salesforce.client import OrgClient, RawBody
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.describes import save_describe
from plugin.salesforce.files import RECORD_ID
from plugin.salesforce.plan import LINK_SOURCES, LINKED_OBJECTS, FieldPlan, build_soql, plan_fields

# 200 quoted 18-character ids keep the URL (~6 KB encoded, with the field list) far below
# Salesforce's 16 KB request-line limit, and match what other Salesforce exporters use.
CHUNK_IDS = 200


@dataclass
class LinkedExport:
    """The CSV of one linked object, and which records each parent (file) is linked to."""

    rows: int = 0
    deleted: int = 0
    parent_ids: int = 0
    chunks: int = 0
    source: str = ""
    links: dict[str, list[str]] = field(default_factory=dict)  # ContentDocumentId -> LinkedEntityIds


def parent_ids(client: OrgClient, name: str, available: Iterable[str]) -> tuple[list[str], str]:
    """Every parent id of a linked object (recycle bin included), and where they came from."""
    present = set(available)
    for source, column in LINK_SOURCES[name]:
        if source not in present:
            continue
        soql = f"SELECT {column} FROM {source}"
        ids = (r.get(column) for r in client.query(soql, object_name=source, include_deleted=True))
        unique = sorted({i for i in ids if isinstance(i, str) and RECORD_ID.match(i)})
        return unique, f"{source}.{column}"
    return [], ""


def chunks(ids: list[str], size: int | None = None) -> Iterator[list[str]]:
    size = size or CHUNK_IDS
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def export_linked(
    client: OrgClient,
    plan: FieldPlan,
    sink: CsvSink,
    *,
    available: Iterable[str],
    on_record: Callable[[], None] = lambda: None,
) -> LinkedExport:
    """Write every row of ``plan.object`` for every parent id into ``sink`` (which the caller closes)."""
    name = plan.object
    parent_field = LINKED_OBJECTS[name]
    ids, source = parent_ids(client, name, available)
    result = LinkedExport(parent_ids=len(ids), source=source)
    seen: set[str] = set()
    for chunk in chunks(ids):
        result.chunks += 1
        # The ids matched RECORD_ID (letters and digits only), so quoting them cannot break the SOQL.
        quoted = ", ".join(f"'{i}'" for i in chunk)
        condition = f"{parent_field} IN ({quoted})"
        for record in client.query(build_soql(plan, where=[condition]), object_name=name, include_deleted=True):
            rid = record.get("Id")
            if isinstance(rid, str) and rid in seen:
                continue  # a parent id in two chunks cannot happen; a row twice would be a duplicate
            if isinstance(rid, str):
                seen.add(rid)
            sink.write(record)
            result.rows += 1
            if record.get("IsDeleted") is True:
                result.deleted += 1
            parent, entity = record.get(parent_field), record.get("LinkedEntityId")
            if isinstance(parent, str) and isinstance(entity, str):
                result.links.setdefault(parent, []).append(entity)
            on_record()
    return result


def export_linked_object(
    client: OrgClient,
    name: str,
    describe: RawBody,
    partial_dir: Path,
    *,
    compress: bool,
    available: Iterable[str],
    objects_filter: Iterable[str],
    windowed: bool,
    on_record: Callable[[], None],
) -> tuple[dict[str, Any], LinkedExport]:
    """A linked object in the backup (its describe and ``data/<Object>.csv``): its manifest entry,
    and the links ``files/index.csv`` needs. The entry's ``api_calls`` leave the describe out."""
    calls = client.api_calls
    save_describe(partial_dir / "describe" / f"{name}.json", describe)
    plan = plan_fields(describe.data)
    sink = CsvSink(partial_dir / "data" / f"{name}.csv", plan.columns, compress=compress)
    try:
        result = export_linked(client, plan, sink, available=available, on_record=on_record)
    except BaseException:
        sink.abort()
        raise
    sha = sink.close()
    entry = {
        "status": "exported",
        "records": sink.rows,
        "deleted_records": result.deleted,
        "fields": len(plan.columns),
        "method": "rest",
        "query": "queryAll",
        "file": str(sink.path.relative_to(partial_dir)),
        "sha256": sha,
        "bytes": sink.path.stat().st_size,
        "compression": "gzip" if compress else None,
        "api_calls": client.api_calls - calls,
        **manifest_entry(result, plan, objects_filter=objects_filter, windowed=windowed),
    }
    return entry, result


def manifest_entry(
    result: LinkedExport, plan: FieldPlan, *, objects_filter: Iterable[str], windowed: bool
) -> dict[str, Any]:
    """What the manifest adds to the usual per-object entry of a linked object."""
    entry: dict[str, Any] = {
        "filter": {
            "field": LINKED_OBJECTS[plan.object],
            "ids_from": result.source,
            "ids": result.parent_ids,
            "queries": result.chunks,
            "ids_per_query": min(CHUNK_IDS, result.parent_ids),
        },
    }
    if windowed:
        entry["window"] = {"note": "exported in full: files/index.csv needs every link of the files it lists"}
    wanted = set(objects_filter)
    if wanted and plan.object not in wanted:
        entry["included_because"] = "ContentVersion was selected: files/index.csv links files to records through it"
    return entry


def links_of(results: Mapping[str, LinkedExport]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for result in results.values():
        for parent, entities in result.links.items():
            merged.setdefault(parent, []).extend(entities)
    return merged
