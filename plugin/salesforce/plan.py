"""Deciding what to export: a pure function of describes and options (no I/O here).

The exporter asks the org for describes, hands them to these functions, and then does what the
plan says; tests exercise the plan with recorded describes and no network.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")

# Objects whose rows carry file bodies, and the option that switches each on.
FILE_OBJECTS: Mapping[str, str] = {
    "ContentVersion": "include_files",
    "Attachment": "include_attachments",
    "Document": "include_documents",
}
# Objects about files without bodies: planned, and excluded, together with ContentVersion.
FILE_METADATA: Mapping[str, str] = {
    "ContentDocument": "include_files",
    "ContentDocumentLink": "include_files",
}
# Salesforce refuses these unfiltered; they are exported by filtered queries, one per chunk of
# parent ids, once the other objects are done (links.py). Object -> the parent id field.
LINKED_OBJECTS: Mapping[str, str] = {"ContentDocumentLink": "ContentDocumentId"}
# Where ContentDocumentLink's parent ids come from, best first (the Id query is cheap).
LINK_SOURCES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "ContentDocumentLink": (("ContentDocument", "Id"), ("ContentVersion", "ContentDocumentId")),
}
CONTENT_VERSIONS = ("all", "latest")
# Size field to check a downloaded body against, per file object.
SIZE_FIELDS: Mapping[str, str] = {
    "ContentVersion": "ContentSize",
    "Attachment": "BodyLength",
    "Document": "BodyLength",
}

# Salesforce refuses unfiltered queries on these (MALFORMED_QUERY / EXTERNAL_OBJECT_UNSUPPORTED_EXCEPTION).
NEEDS_FILTER: Mapping[str, str] = {
    name: "Salesforce refuses queries on this object without a filter on its parent ids"
    for name in (
        "ContentDocumentLink",
        "ContentFolderItem",
        "ContentFolderMember",
        "Vote",
        "IdeaComment",
        "RecordRecommendation",
        "FieldDefinition",
        "EntityParticle",
        "OwnerChangeOptionInfo",
        "PicklistValueInfo",
        "RelationshipDomain",
        "RelationshipInfo",
        "SearchLayout",
        "SiteDetail",
        "UserEntityAccess",
        "UserFieldAccess",
        "DataStatistics",
        "FlexQueueItem",
        "ListViewChartInstance",
        "PlatformAction",
        "OutgoingEmail",
        "OutgoingEmailRelation",
        "DatacloudDandBCompany",
        "UserRecordAccess",
        "KnowledgeArticleVersion",
    )
}
# Listed as queryable in some orgs but refused with INVALID_TYPE_FOR_OPERATION.
NOT_QUERYABLE = frozenset(
    {
        "ActivityHistory",
        "OpenActivity",
        "AggregateResult",
        "AttachedContentDocument",
        "CombinedAttachment",
        "ContentBody",
        "EmailStatus",
        "FeedLike",
        "FeedSignal",
        "FeedTrackedChange",
        "FolderedContentDocument",
        "LookedUpFromActivity",
        "Name",
        "NoteAndAttachment",
        "OwnedContentDocument",
        "ProcessInstanceHistory",
        "QuoteTemplateRichTextData",
    }
)
COMPOUND_TYPES = frozenset({"address", "location"})
# Fields that tell when a row last changed, best first (incremental backups). CreatedDate is not
# one: a row updated after its creation would be missed, so such objects are exported in full.
CHANGE_FIELDS = ("SystemModstamp", "LastModifiedDate")


@dataclass(frozen=True)
class Skip:
    object: str
    reason: str


@dataclass(frozen=True)
class ObjectSelection:
    objects: list[str]
    skipped: list[Skip]


@dataclass(frozen=True)
class FieldPlan:
    """Which fields go into the query and the CSV, and which are handled another way."""

    object: str
    columns: list[str]  # CSV header and SOQL field list, in describe order
    blob_fields: list[str]  # base64: never queried, bodies downloaded one by one
    compound_omitted: list[str] = field(default_factory=list)  # components are exported instead
    change_field: str | None = None  # for incremental windows
    has_is_deleted: bool = False


class UnknownObjectsError(ValueError):
    """``objects_filter`` names objects the org does not have."""

    def __init__(self, unknown: Sequence[str], known: Iterable[str]) -> None:
        known = list(known)
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            lower = [k for k in known if k.lower() == name.lower()]
            hint = f" (did you mean {', '.join(lower or close)}?)" if (lower or close) else ""
            parts.append(f"{name}{hint}")
        super().__init__(
            "objects_filter names objects this org does not have: "
            + "; ".join(parts)
            + ". Names are API names and case-sensitive, e.g. Account, Custom__c."
        )
        self.unknown = list(unknown)


def invalid_object_names(names: Iterable[str]) -> list[str]:
    """Names that cannot be sObject API names (and so could smuggle SOQL or paths)."""
    return [n for n in names if not isinstance(n, str) or not OBJECT_NAME.match(n)]


def _skip_reason(entry: Mapping[str, Any]) -> str | None:
    name = str(entry.get("name"))
    if not entry.get("queryable"):
        return "not queryable (describeGlobal says queryable=false)"
    if name.endswith("ChangeEvent") or name in NOT_QUERYABLE:
        return "Salesforce does not support queries on this object (INVALID_TYPE_FOR_OPERATION)"
    if name in NEEDS_FILTER:
        return NEEDS_FILTER[name]
    if entry.get("deprecatedAndHidden"):
        return "deprecated and hidden by Salesforce"
    return None


def _link_reason(name: str, entries: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a linked object cannot be exported here (no queryable source of its parent ids)."""
    sources = LINK_SOURCES.get(name, ())
    if any(entries.get(obj, {}).get("queryable") for obj, _ in sources):
        return None
    names = " or ".join(obj for obj, _ in sources)
    return f"Salesforce refuses it without a filter on its parent ids, and {names} (to take them from) is not queryable"


def select_objects(
    global_describe: Mapping[str, Any],
    *,
    backup_type: str,
    objects_filter: Sequence[str] = (),
    include: Mapping[str, bool] | None = None,
) -> ObjectSelection:
    """Which objects to export, in export order, and each one left out with its reason (nothing
    skipped silently). Linked objects (ContentDocumentLink) come last: their queries need the ids
    of the others. A filter naming ContentVersion brings ContentDocumentLink along, since
    ``files/index.csv`` maps files to records through it.

    Raises:
        UnknownObjectsError: ``objects_filter`` names an object describeGlobal does not list.
    """
    include = include or {}
    entries = {str(e["name"]): e for e in global_describe.get("sobjects", []) if isinstance(e, Mapping)}
    unknown = [n for n in objects_filter if n not in entries]
    if unknown:
        raise UnknownObjectsError(unknown, sorted(entries))
    wanted = set(objects_filter)
    if "ContentVersion" in wanted:
        wanted |= {name for name in LINKED_OBJECTS if name in entries}
    objects: list[str] = []
    skipped: list[Skip] = []
    for name in sorted(entries, key=lambda n: (n in LINKED_OBJECTS, n)):
        if wanted and name not in wanted:
            continue  # not asked for: not a skip
        if backup_type == "files_only" and name not in FILE_OBJECTS and name not in FILE_METADATA:
            continue
        if name in LINKED_OBJECTS and entries[name].get("queryable"):
            reason = _link_reason(name, entries)
        else:
            reason = _skip_reason(entries[name])
        option = FILE_OBJECTS.get(name) or FILE_METADATA.get(name)
        if reason is None and option is not None and include.get(option) is False:
            reason = f"excluded by {option}=false"
        if reason:
            skipped.append(Skip(name, reason))
        else:
            objects.append(name)
    return ObjectSelection(objects, skipped)


def replicateable_objects(global_describe: Mapping[str, Any]) -> frozenset[str]:
    """Objects whose deletions Salesforce keeps in a delete log (Get Deleted answers for them)."""
    entries = [e for e in global_describe.get("sobjects", []) if isinstance(e, Mapping)]
    return frozenset(str(e["name"]) for e in entries if e.get("replicateable"))


def record_conditions(object_name: str, *, content_versions: str = "all") -> list[str]:
    """SOQL conditions an option puts on one object's rows (names and literals fixed here)."""
    if object_name == "ContentVersion" and content_versions == "latest":
        return ["IsLatest = true"]
    return []


def plan_fields(describe: Mapping[str, Any]) -> FieldPlan:
    """CSV columns for one object: every field except base64 (downloaded as files) and compound
    address/location fields whose components are all exported (as Data Loader does)."""
    fields = [f for f in describe.get("fields", []) if isinstance(f, Mapping)]
    names = {str(f["name"]) for f in fields}
    components: dict[str, set[str]] = {}
    for f in fields:
        parent = f.get("compoundFieldName")
        if parent and parent != f["name"]:
            components.setdefault(str(parent), set()).add(str(f["name"]))
    columns: list[str] = []
    blobs: list[str] = []
    omitted: list[str] = []
    for f in fields:
        name, ftype = str(f["name"]), f.get("type")
        if ftype == "base64":
            blobs.append(name)
        elif ftype in COMPOUND_TYPES and len(components.get(name, ())) >= 2:
            # Components visible (location: latitude + longitude; address: street, city, ...):
            # the compound adds nothing and Data Loader/Bulk leave it out too.
            omitted.append(name)
        else:
            columns.append(name)
    change = next((c for c in CHANGE_FIELDS if c in names), None)
    return FieldPlan(
        object=str(describe.get("name")),
        columns=columns,
        blob_fields=blobs,
        compound_omitted=omitted,
        change_field=change,
        has_is_deleted="IsDeleted" in names,
    )


def window_filter(plan: FieldPlan, *, since: str | None = None) -> str | None:
    """The WHERE condition of an incremental window, or None (``since`` is a validated datetime)."""
    if since and plan.change_field:
        return f"{plan.change_field} > {since}"
    return None


def build_soql(plan: FieldPlan, *, since: str | None = None, where: Sequence[str] = ()) -> str:
    """The SOQL for one object; names come from the describe, ``since`` is a validated datetime
    and ``where`` holds conditions built here (``record_conditions``) or by the exporter from ids."""
    soql = f"SELECT {', '.join(plan.columns)} FROM {plan.object}"
    conditions = list(where)
    window = window_filter(plan, since=since)
    if window:
        conditions.insert(0, window)
    if conditions:
        soql += " WHERE " + " AND ".join(conditions)
    return soql
