"""The quirks every Salesforce org has, as data (org.json "quirks" adds to or replaces them).

Error codes and messages are the bodies real orgs return (recorded by exporters such as
mannharleen/salesforce-data-downloader and Airbyte's source-salesforce); objects whose lifting
filter is not documented take "any WHERE clause" (`fields: []`).
"""

from __future__ import annotations

from typing import Any

_REIFIED = {
    "EntityParticle": "EntityDefinitionId,FieldDefinitionId,DurableId",
    "FieldDefinition": "EntityDefinitionId,DurableId",
    "OwnerChangeOptionInfo": "EntityDefinitionId,DurableId",
    "PicklistValueInfo": "EntityParticleId,DurableId",
    "RelationshipDomain": "FieldId,ChildSobjectId,ParentSobjectId,RelationshipInfoId,DurableId",
    "RelationshipInfo": "ChildSobjectId,FieldId,DurableId",
    "SearchLayout": "EntityDefinitionId,DurableId",
    "SiteDetail": "DurableId",
    "UserEntityAccess": "UserId,DurableId",
    "UserFieldAccess": "DurableId",
}
_UNSUPPORTED = "EXTERNAL_OBJECT_UNSUPPORTED_EXCEPTION"

REQUIRES_FILTER: dict[str, dict[str, Any]] = {
    "ContentDocumentLink": {
        "fields": ["ContentDocumentId", "LinkedEntityId"],
        "message": "Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
        "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the IN operator.",
    },
    "ContentFolderItem": {
        "fields": ["Id", "ParentContentFolderId"],
        "message": "Implementation restriction: ContentFolderItem requires a filter by Id or "
        "ParentContentFolderId using the equals or 'IN' operator",
    },
    "ContentFolderMember": {
        "fields": ["Id", "ChildRecordId", "ParentContentFolderId"],
        "operators": ["="],
        "message": "Implementation restriction: ContentFolderMember requires a filter by a single Id, "
        "ChildRecordId or ParentContentFolderId using the equals operator",
    },
    "IdeaComment": {
        "fields": ["CommunityId", "Id", "IdeaId"],
        "message": "Implementation restriction. When querying the Idea Comment object, you must filter using "
        "the following syntax: CommunityId = [single ID], Id = [single ID], IdeaId = [single ID], Id IN [list "
        "of IDs], or IdeaId IN [list of IDs].",
    },
    "Vote": {
        "fields": ["ParentId", "Parent.Type", "Id"],
        "message": "Implementation restriction: When querying the Vote object, you must filter using the "
        "following syntax: ParentId = [single ID], Parent.Type = [single Type], Id = [single ID], or Id IN "
        "[list of ID's].",
    },
    **{
        name: {
            "fields": columns.split(","),
            "message": f"{name}: a filter on a reified column is required [{columns}]",
        }
        for name, columns in _REIFIED.items()
    },
    "DataStatistics": {
        "fields": ["StatType"],
        "operators": ["=", "!=", "IN", "LIKE"],
        "error_code": _UNSUPPORTED,
        "message": "Where clauses should contain StatType",
    },
    "FlexQueueItem": {
        "fields": ["JobType"],
        "operators": ["=", "!=", "IN", "LIKE"],
        "error_code": _UNSUPPORTED,
        "message": "The WHERE clause must contain a JobType field expression.",
    },
    "ListViewChartInstance": {
        "fields": [],
        "error_code": _UNSUPPORTED,
        "message": "Getting all ListViewChartInstances is unsupported",
    },
    "PlatformAction": {
        "fields": [],
        "error_code": _UNSUPPORTED,
        "message": "Getting all PlatformAction entities is unsupported",
    },
    "OutgoingEmail": {
        "fields": [],
        "error_code": _UNSUPPORTED,
        "message": "This query is not supported on the OutgoingEmail object.",
    },
    "OutgoingEmailRelation": {
        "fields": [],
        "error_code": _UNSUPPORTED,
        "message": "This query is not supported on the OutgoingEmail object.",
    },
    "DatacloudDandBCompany": {
        "fields": [],
        "error_code": _UNSUPPORTED,
        "message": "Datacloud D&B company is not filterable without a criteria.",
    },
}

# "*Suffix" matches every object whose name ends with Suffix.
_NO_QUERY = (
    "*ChangeEvent", "ActivityHistory", "AggregateResult", "AssetTokenEvent", "AttachedContentDocument",
    "CombinedAttachment", "ContentBody", "DatasetExportEvent", "EmailStatus", "FeedLike", "FeedSignal",
    "FeedTrackedChange", "FolderedContentDocument", "LogoutEventStream", "LookedUpFromActivity", "Name",
    "NoteAndAttachment", "OpenActivity", "OrgLifecycleNotification", "OwnedContentDocument",
    "ProcessInstanceHistory", "QuoteTemplateRichTextData",
)  # fmt: skip
NOT_QUERYABLE: dict[str, dict[str, str] | None] = {
    **dict.fromkeys(_NO_QUERY),
    "DatacloudAddress": {
        "error_code": "EXTERNAL_OBJECT_EXCEPTION",
        "message": "SObject - DATACLOUD_ADDRESS : Transient queries are not implemented",
    },
    "DatacloudCompany": {
        "error_code": "DATACLOUD_API_DISABLED_EXCEPTION",
        "message": "Your organization doesn't have permission to access the Data.com API",
    },
    "DatacloudContact": {
        "error_code": "DATACLOUD_API_DISABLED_EXCEPTION",
        "message": "Your organization doesn't have permission to access the Data.com API",
    },
}

NOT_BULK = (
    "AcceptedEventRelation", "AssetTokenEvent", "AttachedContentNote", "Attachment", "CaseStatus",
    "ContractStatus", "DeclinedEventRelation", "EventWhoRelation", "FieldSecurityClassification", "OrderStatus",
    "PartnerRole", "QuoteTemplateRichTextData", "RecentlyViewed", "ServiceAppointmentStatus", "SolutionStatus",
    "TaskPriority", "TaskStatus", "TaskWhoRelation", "UndecidedEventRelation",
)  # fmt: skip

# Rows with one of these boolean fields true are returned by queryAll only (recycle bin, archived activities).
QUERY_ALL_ONLY = ("IsDeleted", "IsArchived")
