from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.salesforce.plan import (
    UnknownObjectsError,
    build_soql,
    invalid_object_names,
    plan_fields,
    record_conditions,
    select_objects,
)

SOURCES = Path(__file__).resolve().parents[2] / "fixtures" / "orgs" / "sources" / "cumulusci"


def describe(name: str) -> dict:
    return json.loads((SOURCES / f"{name}_describe.json").read_text(encoding="utf-8"))


def global_of(*entries: dict) -> dict:
    return {"sobjects": list(entries)}


def entry(name: str, **kw: object) -> dict:
    return {"name": name, "queryable": True, "deprecatedAndHidden": False, **kw}


def test_account_plan_keeps_every_field_but_compound_addresses_whose_parts_are_exported() -> None:
    d = describe("Account")
    plan = plan_fields(d)
    names = [f["name"] for f in d["fields"]]
    assert plan.compound_omitted == ["BillingAddress", "ShippingAddress"]
    assert set(plan.columns) == set(names) - {"BillingAddress", "ShippingAddress"}
    assert "Name" in plan.columns  # compoundFieldName "Name" is a plain string, never dropped
    assert plan.columns == [n for n in names if n in plan.columns]  # describe order
    assert plan.change_field == "SystemModstamp"


def test_base64_fields_are_planned_as_files_not_columns() -> None:
    d = {
        "name": "Attachment",
        "fields": [
            {"name": "Id", "type": "id"},
            {"name": "Body", "type": "base64"},
            {"name": "BodyLength", "type": "int"},
        ],
    }
    plan = plan_fields(d)
    assert plan.columns == ["Id", "BodyLength"]
    assert plan.blob_fields == ["Body"]
    assert build_soql(plan) == "SELECT Id, BodyLength FROM Attachment"


def test_compound_kept_when_a_component_is_hidden() -> None:
    d = {
        "name": "X",
        "fields": [
            {"name": "Id", "type": "id"},
            {"name": "Loc__c", "type": "location"},
            {"name": "Loc__Latitude__s", "type": "double", "compoundFieldName": "Loc__c"},
        ],
    }
    plan = plan_fields(d)
    assert plan.compound_omitted == []
    assert "Loc__c" in plan.columns


def test_select_objects_records_a_reason_for_every_object_left_out() -> None:
    g = global_of(
        entry("Account"),
        entry("AccountChangeEvent"),
        entry("ContentDocumentLink"),
        entry("Secret", queryable=False),
        entry("Attachment"),
    )
    sel = select_objects(g, backup_type="full", include={"include_attachments": False})
    assert sel.objects == ["Account"]
    reasons = {s.object: s.reason for s in sel.skipped}
    assert set(reasons) == {"AccountChangeEvent", "ContentDocumentLink", "Secret", "Attachment"}
    assert "include_attachments" in reasons["Attachment"]
    assert "filter" in reasons["ContentDocumentLink"]


def test_files_only_plans_only_file_objects() -> None:
    g = global_of(entry("Account"), entry("ContentVersion"), entry("Attachment"))
    assert select_objects(g, backup_type="files_only").objects == ["Attachment", "ContentVersion"]


def test_objects_filter_with_unknown_names_lists_close_matches() -> None:
    g = global_of(entry("Account"), entry("Contact"))
    with pytest.raises(UnknownObjectsError) as info:
        select_objects(g, backup_type="full", objects_filter=["Acount", "contact"])
    message = str(info.value)
    assert "Acount (did you mean Account?)" in message
    assert "contact (did you mean Contact?)" in message


def test_object_names_that_could_inject_soql_are_invalid() -> None:
    assert invalid_object_names(["Account", "Custom__c"]) == []
    assert invalid_object_names(["Account WHERE Id != null", "../etc", "1Bad", ""]) == [
        "Account WHERE Id != null",
        "../etc",
        "1Bad",
        "",
    ]


def test_incremental_soql_filters_on_the_change_field() -> None:
    plan = plan_fields(describe("Contact"))
    soql = build_soql(plan, since="2024-01-31T00:00:00Z")
    assert soql.endswith(" FROM Contact WHERE SystemModstamp > 2024-01-31T00:00:00Z")


def test_content_document_link_is_planned_last_and_only_with_a_source_of_its_parent_ids() -> None:
    g = global_of(entry("ContentDocumentLink"), entry("Account"), entry("ContentDocument"), entry("ContentVersion"))
    assert select_objects(g, backup_type="full").objects == [
        "Account",
        "ContentDocument",
        "ContentVersion",
        "ContentDocumentLink",
    ]
    alone = select_objects(global_of(entry("ContentDocumentLink"), entry("Account")), backup_type="full")
    assert alone.objects == ["Account"]
    assert "ContentDocument or ContentVersion" in alone.skipped[0].reason


def test_a_filter_naming_content_version_brings_its_links_and_files_only_keeps_file_metadata() -> None:
    g = global_of(entry("ContentDocumentLink"), entry("Account"), entry("ContentDocument"), entry("ContentVersion"))
    picked = select_objects(g, backup_type="full", objects_filter=["ContentVersion"])
    assert picked.objects == ["ContentVersion", "ContentDocumentLink"]
    files = select_objects(g, backup_type="files_only")
    assert files.objects == ["ContentDocument", "ContentVersion", "ContentDocumentLink"]
    off = select_objects(g, backup_type="full", include={"include_files": False})
    assert off.objects == ["Account"]
    assert {s.object: s.reason for s in off.skipped} == {
        name: "excluded by include_files=false" for name in ("ContentDocument", "ContentDocumentLink", "ContentVersion")
    }


def test_objects_without_systemmodstamp_or_lastmodifieddate_have_no_window_field() -> None:
    history = {
        "name": "AccountHistory",
        "fields": [{"name": "Id", "type": "id"}, {"name": "CreatedDate", "type": "datetime"}],
    }
    plan = plan_fields(history)
    assert plan.change_field is None
    assert build_soql(plan, since="2024-01-31T00:00:00Z") == "SELECT Id, CreatedDate FROM AccountHistory"


def test_latest_content_versions_add_an_islatest_condition() -> None:
    plan = plan_fields(describe("Contact"))
    assert record_conditions("Contact", content_versions="latest") == []
    cv = {
        "name": "ContentVersion",
        "fields": [{"name": "Id", "type": "id"}, {"name": "SystemModstamp", "type": "datetime"}],
    }
    where = record_conditions("ContentVersion", content_versions="latest")
    assert build_soql(plan_fields(cv), since="2024-01-31T00:00:00Z", where=where) == (
        "SELECT Id, SystemModstamp FROM ContentVersion WHERE SystemModstamp > 2024-01-31T00:00:00Z AND IsLatest = true"
    )
    assert record_conditions("ContentVersion", content_versions="all") == []
    assert "IsLatest" not in build_soql(plan)
