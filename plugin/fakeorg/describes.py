"""Synthesised describe bodies: field and sObject templates, describeGlobal entries, URL versions.

Used for objects the org folder does not describe itself (the built-in Organization) and for
tests that build small orgs in code. Shapes follow real API 48-62 describe bodies.
"""

from __future__ import annotations

import re
from typing import Any

from .jsonlit import Lit

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "long": "xsd:long",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "base64": "xsd:base64Binary",
    "address": "urn:address",
    "location": "urn:location",
    "anyType": "xsd:anyType",
}
_TEXT_TYPES = {"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url"}

# Keys of a describeGlobal entry that are copied from the sObject describe when present.
GLOBAL_ENTRY_KEYS = (
    "activateable", "associateEntityType", "associateParentEntity", "createable", "custom",
    "customSetting", "deepCloneable", "deletable", "deprecatedAndHidden", "feedEnabled",
    "hasSubtypes", "isInterface", "isSubtype", "keyPrefix", "label", "labelPlural", "layoutable",
    "mergeable", "mruEnabled", "name", "queryable", "replicateable", "retrieveable", "searchable",
    "triggerable", "undeletable", "updateable",
)  # fmt: skip

_VERSION_IN_PATH = re.compile(r"^/services/data/v[^/]+/")


def make_field(name: str, field_type: str, label: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A full describe field entry with realistic defaults for `field_type`; overrides win."""
    text = field_type in _TEXT_TYPES
    length = 18 if field_type in ("id", "reference") else (255 if text else 0)
    field: dict[str, Any] = {
        "aggregatable": field_type not in ("address", "location", "base64", "textarea"),
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": Lit(str(length * 3 if text else length)),
        "calculated": False,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": field_type not in ("id", "address", "location"),
        "custom": name.endswith("__c"),
        "defaultValue": None,
        "defaultValueFormula": None,
        "defaultedOnCreate": field_type in ("id", "boolean"),
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": Lit("9" if field_type == "int" else "0"),
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": False,
        "extraTypeInfo": None,
        "filterable": field_type not in ("base64", "textarea", "address", "location"),
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": field_type in ("id", "reference", "boolean", "string", "picklist", "date"),
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": field_type == "id",
        "inlineHelpText": None,
        "label": label if label is not None else name,
        "length": Lit(str(length)),
        "mask": None,
        "maskType": None,
        "name": name,
        "nameField": name == "Name",
        "namePointing": False,
        "nillable": field_type not in ("id", "boolean"),
        "permissionable": field_type not in ("id", "boolean"),
        "picklistValues": [],
        "polymorphicForeignKey": False,
        "precision": Lit("18" if field_type in ("double", "currency", "percent") else "0"),
        "queryByDistance": field_type in ("address", "location"),
        "referenceTargetField": None,
        "referenceTo": [],
        "relationshipName": None,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": False,
        "scale": Lit("0"),
        "searchPrefilterable": False,
        "soapType": _SOAP_TYPES.get(field_type, "xsd:string"),
        "sortable": field_type not in ("base64", "textarea", "address", "location", "multipicklist"),
        "type": field_type,
        "unique": False,
        "updateable": field_type not in ("id", "address", "location"),
        "writeRequiresMasterRead": False,
    }
    field.update(overrides)
    return field


def make_sobject(name: str, key_prefix: str, fields: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A full sObject describe body (URLs carry a placeholder version, rewritten when served)."""
    base = f"/services/data/v62.0/sobjects/{name}"
    body: dict[str, Any] = {
        "actionOverrides": [],
        "activateable": False,
        "childRelationships": [],
        "compactLayoutable": False,
        "createable": True,
        "custom": name.endswith("__c"),
        "customSetting": False,
        "deepCloneable": False,
        "defaultImplementation": None,
        "deletable": True,
        "deprecatedAndHidden": False,
        "extendedBy": None,
        "extendsInterfaces": None,
        "feedEnabled": False,
        "fields": fields,
        "hasSubtypes": False,
        "implementedBy": None,
        "implementsInterfaces": None,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": key_prefix,
        "label": name,
        "labelPlural": name + "s",
        "layoutable": True,
        "listviewable": None,
        "lookupLayoutable": None,
        "mergeable": False,
        "mruEnabled": False,
        "name": name,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "queryable": True,
        "recordTypeInfos": [],
        "replicateable": True,
        "retrieveable": True,
        "searchLayoutable": False,
        "searchable": True,
        "supportedScopes": [],
        "triggerable": False,
        "undeletable": False,
        "updateable": True,
        "urls": {
            "rowTemplate": base + "/{ID}",
            "describe": base + "/describe",
            "sobject": base,
        },
    }
    body.update(overrides)
    return body


def global_entry(describe: dict[str, Any]) -> dict[str, Any]:
    """The describeGlobal entry for one sObject describe."""
    entry = {key: describe[key] for key in GLOBAL_ENTRY_KEYS if key in describe}
    name = describe["name"]
    base = f"/services/data/v62.0/sobjects/{name}"
    urls = describe.get("urls") or {}
    entry["urls"] = {
        "rowTemplate": urls.get("rowTemplate", base + "/{ID}"),
        "describe": urls.get("describe", base + "/describe"),
        "sobject": urls.get("sobject", base),
    }
    return entry


def with_version(value: Any, version: str) -> Any:
    """A copy of a JSON body with every `/services/data/vNN.N/` path rewritten to `version`.

    Recorded describes carry mixed versions (v48.0, v52.0, vxx.0); clients expect the one they
    asked for. Only strings starting with the REST prefix are touched, nothing else changes.
    """
    if isinstance(value, Lit):
        return value
    if isinstance(value, str):
        if value.startswith("/services/data/v"):
            return _VERSION_IN_PATH.sub(f"/services/data/v{version}/", value, count=1)
        return value
    if isinstance(value, dict):
        return {key: with_version(item, version) for key, item in value.items()}
    if isinstance(value, list):
        return [with_version(item, version) for item in value]
    return value
