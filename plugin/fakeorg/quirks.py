"""Per-object quirks of Salesforce, read from org.json "quirks" over defaults that match Salesforce
(`quirk_defaults`): objects that refuse unfiltered or any queries, objects Bulk refuses, fields
hidden by field-level security or added in a later API version, rows only queryAll returns,
and objects whose big queries time out.

REST queries ask `check_query` before running and `check_result` after; Bulk job creation asks
`bulk_entity_refusal`, `check_query` and, once the query is bound, `bulk_field_refusal` (never
`check_result`: Bulk is what serves the objects REST times out on); field visibility reaches every
route through `view`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import quirk_defaults
from .errors import ApiError, FakeOrgError
from .fieldview import FieldView
from .soql import BoolOp, Compare, Condition, InList, Like, parse
from .table import Field as DescribeField
from .table import Record

if TYPE_CHECKING:
    from .org import FakeOrg

_COMPOUND_TYPES = frozenset({"address", "location"})
_QUERY_TIMEOUT = ApiError(400, "QUERY_TIMEOUT", "Your query request was running for too long.")


class RequiredFilter(BaseModel):
    """A WHERE condition the object insists on (`fields: []` = any WHERE clause will do)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: list[str]
    operators: list[str] = Field(default_factory=lambda: ["=", "IN"])
    error_code: str = "MALFORMED_QUERY"
    message: str


class Refusal(BaseModel):
    """The error an object answers every query with."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    error_code: str = "INVALID_TYPE_FOR_OPERATION"
    message: str | None = None


def _version(text: str) -> tuple[int, ...]:
    parts = text.strip().lstrip("vV").split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not an API version like 60.0")
    return tuple(int(p) for p in parts)


class QuirksConfig(BaseModel):
    """The org.json "quirks" object; with `defaults` true its entries add to (or replace, per object)
    the Salesforce defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: bool = True
    requires_filter: dict[str, RequiredFilter] = Field(default_factory=dict)
    not_queryable: dict[str, Refusal | None] = Field(default_factory=dict)
    not_bulk: list[str] = Field(default_factory=list)
    hidden_fields: dict[str, list[str]] = Field(default_factory=dict)
    field_versions: dict[str, dict[str, str]] = Field(default_factory=dict)
    query_timeout_rows: dict[str, int] = Field(default_factory=dict)
    query_all_only: list[str] | None = None

    @field_validator("not_queryable", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return dict.fromkeys(value) if isinstance(value, list) else value

    @field_validator("field_versions")
    @classmethod
    def _versions(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for fields in value.values():
            for version in fields.values():
                _version(version)
        return value


class Quirks:
    """The quirks of one org, with case-insensitive object and field names."""

    def __init__(self, config: QuirksConfig | None = None) -> None:
        config = config or QuirksConfig()
        requires = dict(quirk_defaults.REQUIRES_FILTER) if config.defaults else {}
        refusals: dict[str, Any] = dict(quirk_defaults.NOT_QUERYABLE) if config.defaults else {}
        not_bulk = set(quirk_defaults.NOT_BULK) if config.defaults else set()
        requires.update({k: v.model_dump() for k, v in config.requires_filter.items()})
        refusals.update({k: v.model_dump() if v else None for k, v in config.not_queryable.items()})
        self._requires = {k.lower(): RequiredFilter.model_validate(v) for k, v in requires.items()}
        self._refusals = {k.lower(): Refusal.model_validate(v or {}) for k, v in refusals.items()}
        self._not_bulk = {name.lower() for name in (*not_bulk, *config.not_bulk)}
        self._hidden = {k.lower(): {f.lower() for f in v} for k, v in config.hidden_fields.items()}
        self._since = {
            k.lower(): {f.lower(): _version(at) for f, at in fields.items()}
            for k, fields in config.field_versions.items()
        }
        self._timeouts = {k.lower(): v for k, v in config.query_timeout_rows.items()}
        flags = quirk_defaults.QUERY_ALL_ONLY if config.query_all_only is None else config.query_all_only
        self._query_all_only = tuple(flags)
        self._views: dict[str, FakeOrg] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Quirks:
        """From org.json settings.

        Raises:
            FakeOrgError: the "quirks" object does not fit the format; the message names the key.
        """
        try:
            return cls(QuirksConfig.model_validate(settings.get("quirks") or {}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise FakeOrgError(f"org.json quirks: {problems}; see docs/fake-org.md") from None

    # --- queries ---------------------------------------------------------------------------

    def refusal(self, sobject: str) -> ApiError | None:
        """The error every query of this object gets (not queryable at all), or None."""
        key = sobject.lower()
        found = self._refusals.get(key)
        if found is None:
            wildcards = (r for name, r in self._refusals.items() if name.startswith("*") and key.endswith(name[1:]))
            found = next(wildcards, None)
        if found is None:
            return None
        return ApiError(400, found.error_code, found.message or f"entity type {sobject} does not support query")

    def check_query(self, org: FakeOrg, text: str) -> None:
        """Refuse a query the way Salesforce does before running it (REST and Bulk alike).

        Raises:
            ApiError: INVALID_TYPE_FOR_OPERATION (or the object's own code), or the filter an object
                requires (MALFORMED_QUERY, EXTERNAL_OBJECT_UNSUPPORTED_EXCEPTION).
        """
        query = parse(text)
        table = org.table(query.sobject)
        if table is None:
            return  # run_query answers INVALID_TYPE with the caret line
        refused = self.refusal(table.name)
        if refused is not None:
            raise refused
        required = self._requires.get(table.name.lower())
        if required is not None and not _has_filter(query.where, table.name, required):
            raise ApiError(400, required.error_code, required.message)

    def check_result(self, sobject: str, rows: int) -> None:
        """QUERY_TIMEOUT when a REST query of a big object matches more rows than it can serve."""
        limit = self._timeouts.get(sobject.lower())
        if limit is not None and rows > limit:
            raise _QUERY_TIMEOUT

    def query_all_only(self, record: Record) -> bool:
        """Rows only queryAll returns: deleted (recycle bin) or archived."""
        return any(record.get(flag) is True for flag in self._query_all_only)

    @property
    def query_all_only_flags(self) -> frozenset[str]:
        """The field names `query_all_only` looks at (as written: records are read by exact name)."""
        return frozenset(self._query_all_only)

    def bulk_entity_refusal(self, sobject: str) -> ApiError | None:
        """INVALIDENTITY when Bulk API 2.0 does not serve this object (or no query does), else None.

        Asked before the query's filter quirks and its binding, so these objects fail the same way
        whatever the SOQL says (the exporter falls back to REST on INVALIDENTITY).
        """
        if sobject.lower() in self._not_bulk or self.refusal(sobject) is not None:
            return ApiError(400, "INVALIDENTITY", f"Entity '{sobject}' is not supported by the Bulk API.")
        return None

    def bulk_field_refusal(self, fields: Iterable[DescribeField]) -> ApiError | None:
        """Salesforce's API_ERROR for the first compound (address/location) or base64 field of a
        bound Bulk query, else None."""
        for fld in fields:
            if fld.type in _COMPOUND_TYPES:
                return ApiError(400, "API_ERROR", "Selecting compound data not supported in Bulk Query")
            if fld.type == "base64":
                return ApiError(
                    400, "API_ERROR", f"FeatureNotEnabled : Cannot serialize value for '{fld.name}' in CSV format"
                )
        return None

    # --- field visibility ------------------------------------------------------------------

    def hidden(self, sobject: str, version: str) -> frozenset[str]:
        """Lower-cased names of the fields this user cannot see at this API version."""
        key, at = sobject.lower(), _version(version)
        since = self._since.get(key, {})
        return frozenset(self._hidden.get(key, set()) | {f for f, v in since.items() if at < v})

    def view(self, org: FakeOrg, version: str) -> FakeOrg:
        """The org as a request at `version` sees it (cached; the org itself when nothing is hidden)."""
        if not self._hidden and not self._since:
            return org
        with self._lock:
            cached = self._views.get(version)
        if cached is not None:
            return cached
        tables = {}
        for key, table in org.tables.items():
            hidden = self.hidden(table.name, version)
            tables[key] = FieldView(table, hidden) if hidden else table
        view = dataclasses.replace(org, tables=tables)
        with self._lock:
            return self._views.setdefault(version, view)


def _has_filter(where: Condition | None, sobject: str, required: RequiredFilter) -> bool:
    """A condition on a required field, reachable from the top through AND only."""
    if where is None:
        return False
    if not required.fields:
        return True
    wanted = {f.lower() for f in required.fields}
    ops = {op.upper() for op in required.operators}
    pending: list[Condition] = [where]
    while pending:
        cond = pending.pop()
        if isinstance(cond, BoolOp):
            if cond.op == "AND":
                pending.extend(cond.items)
            continue
        if isinstance(cond, Compare | InList | Like):
            name = cond.field.text.lower()
            name = name.removeprefix(sobject.lower() + ".")
            op = "LIKE" if isinstance(cond, Like) else "IN" if isinstance(cond, InList) else cond.op
            if name in wanted and op in ops and not (isinstance(cond, InList) and cond.negated):
                return True
    return False
