from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.salesforce.plan import (
    UnknownObjectsError,
    build_soql,
    invalid_object_names,
    plan_fields,
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
