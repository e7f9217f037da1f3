"""Running a parsed SOQL query against a `FakeOrg`: name binding, filtering, sorting, projection.

Binding checks every name against the describes (INVALID_TYPE / INVALID_FIELD, as Salesforce
words them) and fixes the canonical casing the response uses. Evaluation is lazy (scans.py):
the result is a sequence computed page by page, so generated volume is never held in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .org import FakeOrg
from .scans import Chain, IdOrderScan, MatchedRows, PositionScan, RowScan, file_id_order, id_range, stamp_range
from .soql import BoolOp, Compare, Condition, FieldPath, InList, Like, Literal, Not, Query, parse, soql_error
from .table import ID_TYPES, Field, Record, SObjectTable
from .values import comparable, compare, expected_literal, like_matcher, literal_value, sort_key

_NO_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
    "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)
_NO_COLUMN = (
    "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure "
    "to append the '__c' after the custom field name. Please reference your WSDL or the describe call "
    "for the appropriate names."
)
_NO_RELATION = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a custom "
    "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
    "your WSDL or the describe call for the appropriate names."
)


@dataclass(frozen=True)
class BoundPath:
    """A field path resolved against the describes: relationship hops, then the final field."""

    hops: tuple[Field, ...]
    field: Field


@dataclass
class Node:
    """Projection tree: fields and nested relationships in SELECT order."""

    items: list[tuple[Field, Node | None]] = field(default_factory=list)


Value = Callable[[Record], Any]
_AUDIT_STAMPS = frozenset({"SystemModstamp", "LastModifiedDate", "CreatedDate"})
# queryAll-only flags an Id-range count of generated rows can honour without a scan: generated
# rows are deleted one in `deleted_every` and never archived (synthetic.py).
_CLOSED_FORM_FLAGS = frozenset({"IsDeleted", "IsArchived"})


@dataclass(frozen=True)
class Column:
    """One SELECT item: its header as Bulk writes it (`Account.Name`), the bound path, a getter."""

    header: str
    path: BoundPath
    value: Value


@dataclass
class QueryResult:
    """The matched rows of one query (a lazy snapshot a cursor pages through) and how to render them."""

    table: SObjectTable
    tree: Node
    rows: MatchedRows
    is_count: bool
    query: Query
    columns: tuple[Column, ...] = ()

    @property
    def total_size(self) -> int:
        """Rows matched after OFFSET/LIMIT (what `totalSize` reports)."""
        return len(self.rows)


def run_query(org: FakeOrg, text: str, *, include_deleted: bool) -> QueryResult:
    """Parse and bind a query; rows are evaluated lazily as they are read.

    Raises:
        ApiError: MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD or INVALID_QUERY_FILTER_OPERATOR
            with Salesforce's caret message.
    """
    query = parse(text)
    table = org.table(query.sobject)
    if table is None or not table.describe.get("queryable", True):
        raise soql_error(text, query.sobject_pos, "INVALID_TYPE", _NO_TYPE.format(name=query.sobject))
    binder = _Binder(org, table, query)
    tree = binder.projection()
    predicate = binder.predicate(query.where) if query.where is not None else None
    hidden = org.quirks.query_all_only  # recycle-bin and archived rows: queryAll only
    if include_deleted:
        accept = predicate
    elif predicate is None:
        accept = _visible(hidden)
    else:
        accept = (lambda p: lambda r: not hidden(r) and p(r))(predicate)
    rows = _matched_rows(binder, accept, include_deleted=include_deleted)
    return QueryResult(table, tree, rows, query.is_count, query, tuple(binder.columns))


def _visible(hidden: Callable[[Record], bool]) -> Callable[[Record], bool]:
    return lambda record: not hidden(record)


def _matched_rows(binder: _Binder, accept: Callable[[Record], bool] | None, *, include_deleted: bool) -> MatchedRows:
    """Pick the cheapest scan: natural order, Id order (merge), or a sort of the matching positions."""
    table, query = binder.table, binder.query
    bounds, stamps, only_ids = binder.bounds(query.where)
    generated = range(0)
    if table.generated is not None:
        by_id, by_time = id_range(table, bounds), stamp_range(table, stamps)
        start = max(by_id.start, by_time.start)
        generated = range(start, max(start, min(by_id.stop, by_time.stop)))
    files = table.file_count
    natural = Chain([range(files), range(files + generated.start, files + generated.stop)])
    keys = [(binder.bind(item.field), item) for item in query.order_by]
    for path, item in keys:
        if not path.field.sortable:
            raise binder.error(
                item.field.pos, "INVALID_FIELD", f"field '{path.field.name}' can not be sorted in a query call"
            )
    scan: RowScan
    if not keys:
        scan = PositionScan(table, natural)
    elif not keys[0][0].hops and keys[0][0].field.type == "id":  # Ids are unique: later keys never matter
        positions, id_keys = file_id_order(table)
        scan = IdOrderScan(table, positions, id_keys, generated, keys[0][1].descending)
    else:
        matching = [p for p in natural if accept is None or accept(table.row(p))]
        for path, item in reversed(keys):
            getter, kind = binder.getter(path), path.field.type
            matching.sort(
                key=lambda p, g=getter, i=item, t=kind: sort_key(  # type: ignore[misc]
                    comparable(t, g(table.row(p))), descending=i.descending, nulls_last=i.nulls_last
                ),
                reverse=item.descending,
            )
        return MatchedRows(PositionScan(table, matching), None, skip=query.offset or 0, limit=query.limit)
    quick = None
    flags = binder.org.quirks.query_all_only_flags
    if only_ids and flags <= _CLOSED_FORM_FLAGS:  # another flag would hide generated rows we cannot count
        source = table.generated
        hides_deleted = not include_deleted and "IsDeleted" in flags

        def quick() -> int:
            in_files = sum(1 for p in range(files) if accept is None or accept(table.row(p)))
            deleted = source.deleted_between(generated.start, generated.stop) if hides_deleted and source else 0
            return in_files + len(generated) - deleted

    return MatchedRows(scan, accept, skip=query.offset or 0, limit=query.limit, quick_count=quick)


class _Binder:
    def __init__(self, org: FakeOrg, table: SObjectTable, query: Query) -> None:
        self.org = org
        self.table = table
        self.query = query
        self.columns: list[Column] = []

    def error(self, pos: int, code: str, message: str) -> ApiError:
        return soql_error(self.query.text, pos, code, message)

    def bind(self, path: FieldPath) -> BoundPath:
        parts = list(path.parts)
        if len(parts) > 1 and parts[0].lower() == self.table.name.lower() and self.table.relationship(parts[0]) is None:
            parts = parts[1:]  # "Account.Name FROM Account" qualifies with the object's own name
        tables = [self.table]
        hops: list[Field] = []
        for hop_name in parts[:-1]:
            hop = next((t.relationship(hop_name) for t in tables if t.relationship(hop_name)), None)
            targets = [self.org.table(n) for n in hop.reference_to] if hop else []
            tables = [t for t in targets if t is not None]
            if hop is None or not tables:
                raise self.error(path.pos, "INVALID_FIELD", _NO_RELATION.format(name=hop_name))
            hops.append(hop)
        final = next((t.field(parts[-1]) for t in tables if t.field(parts[-1])), None)
        if final is None:
            entity = tables[0].name
            raise self.error(path.pos, "INVALID_FIELD", _NO_COLUMN.format(name=parts[-1], entity=entity))
        return BoundPath(tuple(hops), final)

    def projection(self) -> Node:
        root = Node()
        seen: set[tuple[str, ...]] = set()
        for path in self.query.fields:
            bound = self.bind(path)
            key = (*(h.name.lower() for h in bound.hops), bound.field.name.lower())
            if key in seen:
                shown = ".".join([*(h.relationship_name or "" for h in bound.hops), bound.field.name])
                raise self.error(path.pos, "MALFORMED_QUERY", f"duplicate field selected: {shown}")
            seen.add(key)
            header = ".".join([*(h.relationship_name or h.name for h in bound.hops), bound.field.name])
            self.columns.append(Column(header, bound, self.getter(bound)))
            node = root
            for hop in bound.hops:
                child = next((sub for f, sub in node.items if sub is not None and f.name == hop.name), None)
                if child is None:
                    child = Node()
                    node.items.append((hop, child))
                node = child
            node.items.append((bound.field, None))
        return root

    def getter(self, path: BoundPath) -> Value:
        org = self.org

        def get(record: Record) -> Any:
            current: Record | None = record
            for hop in path.hops:
                found = resolve_parent(org, current, hop) if current is not None else None
                current = found[1] if found else None
            return current.get(path.field.name) if current is not None else None

        return get

    def predicate(self, cond: Condition) -> Callable[[Record], bool]:
        if isinstance(cond, BoolOp):
            parts = [self.predicate(c) for c in cond.items]
            if cond.op == "AND":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if isinstance(cond, Not):
            inner = self.predicate(cond.item)
            return lambda r: not inner(r)
        path = self.bind(cond.field)
        if not path.field.filterable:
            raise self.error(
                cond.field.pos, "INVALID_FIELD", f"field '{path.field.name}' can not be filtered in query call"
            )
        get, kind = self.getter(path), path.field.type
        if isinstance(cond, Like):
            regex = like_matcher(cond.pattern.text)
            return lambda r: (v := get(r)) is not None and regex.fullmatch(str(v)) is not None
        literals = cond.values if isinstance(cond, InList) else (cond.value,)
        wanted = [self.check_literal(path.field, lit) for lit in literals]
        if isinstance(cond, InList):
            negated = cond.negated
            return lambda r: negated != any(compare(comparable(kind, get(r)), "=", w) for w in wanted)
        op, value = cond.op, wanted[0]
        return lambda r: compare(comparable(kind, get(r)), op, value)

    def check_literal(self, fld: Field, literal: Literal) -> Any:
        kind, type_name = expected_literal(fld.type)
        if literal.kind not in ("null", kind):
            quoted = "should be enclosed in quotes" if kind == "string" else "should not be enclosed in quotes"
            message = f"value of filter criterion for field '{fld.name}' must be of type {type_name} and {quoted}"
            raise self.error(literal.pos, "INVALID_FIELD", message)
        if fld.type in ID_TYPES and literal.kind == "string":
            text = literal.string_value()
            if len(text) not in (15, 18) or not text.isalnum():
                raise self.error(literal.pos, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}")
        return literal_value(fld.type, literal)

    def bounds(self, cond: Condition | None) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], bool]:
        """Top-level AND conjuncts that narrow a scan of generated rows: `Id <op> 'literal'` and
        `SystemModstamp|LastModifiedDate|CreatedDate <op> datetime`, and whether Id bounds are the whole filter."""
        if cond is None:
            return [], [], True
        items = cond.items if isinstance(cond, BoolOp) and cond.op == "AND" else (cond,)
        ids: list[tuple[str, Any]] = []
        stamps: list[tuple[str, Any]] = []
        only_ids = True
        for item in items:
            if isinstance(item, Compare) and item.op != "!=":
                path = self.bind(item.field)
                if not path.hops and path.field.type == "id" and item.value.kind == "string":
                    ids.append((item.op, self.check_literal(path.field, item.value)))
                    continue
                if not path.hops and path.field.name in _AUDIT_STAMPS and item.value.kind == "datetime":
                    stamps.append((item.op, self.check_literal(path.field, item.value)))
            only_ids = False
        return ids, stamps, only_ids


def resolve_parent(org: FakeOrg, record: Record, hop: Field) -> tuple[SObjectTable | None, Record] | None:
    """The parent a reference field points at; falls back to a nested object stored in the record."""
    ref = record.get(hop.name)
    if isinstance(ref, str) and ref:
        found = org.find(ref, hop.reference_to)
        if found is not None:
            return found
    nested = record.get(hop.relationship_name or "")
    if isinstance(nested, dict):
        type_name = (nested.get("attributes") or {}).get("type")
        table = org.table(str(type_name)) if type_name else None
        return table, {k: v for k, v in nested.items() if k != "attributes"}
    return None


def project(org: FakeOrg, result: QueryResult, record: Record, version: str) -> dict[str, Any]:
    """One record as the REST query response renders it: attributes, then SELECT fields in order."""
    return _render(org, result.table.name, result.tree, record, version)


def _render(org: FakeOrg, type_name: str, node: Node, record: Record, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(type_name, record.get("Id"), version)}
    table = org.table(type_name)
    for fld, child in node.items:
        if child is None:
            out[fld.name] = field_value(table, type_name, record, fld, version)
            continue
        found = resolve_parent(org, record, fld)
        key = fld.relationship_name or fld.name
        if found is None:
            out[key] = None
        else:
            parent_table, parent = found
            parent_type = parent_table.name if parent_table else (fld.reference_to or ("",))[0]
            out[key] = _render(org, parent_type, child, parent, version)
    return out


def attributes(type_name: str, record_id: Any, version: str) -> dict[str, str]:
    """The `attributes` object every REST record carries."""
    return {"type": type_name, "url": f"/services/data/v{version}/sobjects/{type_name}/{record_id}"}


def field_value(table: SObjectTable | None, type_name: str, record: Record, fld: Field, version: str) -> Any:
    """A field's REST value: the stored value (missing is null), or a blob URL for base64 fields."""
    if fld.type == "base64":
        record_id = record.get("Id")
        if table is not None and record_id and table.blob_path(str(record_id), fld.name) is not None:
            return f"/services/data/v{version}/sobjects/{type_name}/{record_id}/{fld.name}"
        return None
    return record.get(fld.name)
