"""How each object's records are fetched: REST or Bulk API 2.0, and in how many field chunks.

Pure functions of the plan, the describe and the record counts (no I/O), so the choice is tested
without a network. The rules:

- Objects with at least ``bulk_threshold`` records (``limits/recordCount``) go through Bulk API 2.0,
  unless Bulk cannot return every column: objects the Bulk API does not support, and objects whose
  plan keeps a compound address/location field (its components are hidden), which Bulk refuses.
- A REST query travels in the URL. Salesforce refuses URIs over 16,384 bytes (414) and URI plus
  headers over 16,384 bytes (431), so a wide object's field list is split into chunks that each
  fit ``REST_URL_BUDGET``; every chunk carries ``Id`` and the chunks are joined by Id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

from plugin.salesforce.plan import COMPOUND_TYPES, FieldPlan

Method = Literal["rest", "bulk"]

# 16,384 bytes of URI + headers, less room for our headers (bearer token, query options, host).
REST_URL_BUDGET = 14_000
# The longest filter a chunk query gets: an Id range and the ordering the join needs.
_RANGE_CLAUSE = " WHERE Id > '000000000000000' AND Id <= '000000000000000' ORDER BY Id"

# Salesforce refuses Bulk API query jobs on these (INVALIDENTITY); asking would cost a call.
NOT_BULK = frozenset(
    {
        "AcceptedEventRelation",
        "AssetTokenEvent",
        "AttachedContentNote",
        "Attachment",
        "CaseStatus",
        "ContractStatus",
        "DeclinedEventRelation",
        "EventWhoRelation",
        "FieldSecurityClassification",
        "OrderStatus",
        "PartnerRole",
        "QuoteTemplateRichTextData",
        "RecentlyViewed",
        "ServiceAppointmentStatus",
        "SolutionStatus",
        "TaskPriority",
        "TaskStatus",
        "TaskWhoRelation",
        "UndecidedEventRelation",
    }
)


def bulk_refusal(plan: FieldPlan, describe: Mapping[str, Any]) -> str | None:
    """Why Bulk API 2.0 cannot export this object with every planned column, or None."""
    if plan.object in NOT_BULK:
        return f"the Bulk API does not support {plan.object}"
    types = {str(f.get("name")): f.get("type") for f in describe.get("fields", []) if isinstance(f, Mapping)}
    kept = [c for c in plan.columns if types.get(c) in COMPOUND_TYPES]
    if kept:
        return f"Bulk queries cannot select compound fields ({', '.join(kept)}) and their components are hidden"
    return None


def choose_method(count: int | None, *, threshold: int, bulk_refused: str | None) -> Method:
    """Bulk for objects of at least ``threshold`` records (when Bulk can take them), else REST.

    An object recordCount does not list is sized as unknown and goes through REST; a REST query
    that times out still moves to Bulk or Id ranges (records.py).
    """
    if bulk_refused is None and count is not None and count >= threshold:
        return "bulk"
    return "rest"


def query_url_length(base_url: str, soql: str) -> int:
    """Length of ``<base>queryAll/?q=<soql>`` as requests encodes it."""
    return len(f"{base_url}queryAll/?") + len(urlencode({"q": soql}))


def field_chunks(object_name: str, columns: Sequence[str], *, base_url: str, budget: int) -> list[list[str]]:
    """The columns in as few chunks as fit ``budget`` URL characters each (Id first in every chunk).

    One chunk when the whole SELECT fits. Each chunk is sized for its longest form (with an Id
    range and ORDER BY Id), so a chunk never has to be split again later.

    Raises:
        ValueError: a single field does not fit the budget (cannot happen with real API names).
    """
    rest = [c for c in columns if c != "Id"]
    has_id = len(rest) != len(columns)
    whole = f"SELECT {', '.join(columns)} FROM {object_name}{_RANGE_CLAUSE}"
    if query_url_length(base_url, whole) <= budget or not has_id:
        return [list(columns)]
    chunks: list[list[str]] = []
    current: list[str] = ["Id"]
    for name in rest:
        trial = f"SELECT {', '.join([*current, name])} FROM {object_name}{_RANGE_CLAUSE}"
        if query_url_length(base_url, trial) > budget:
            if len(current) == 1:
                raise ValueError(f"field {object_name}.{name} alone does not fit a {budget}-character URL")
            chunks.append(current)
            current = ["Id"]
        current.append(name)
    chunks.append(current)
    return chunks
