"""The built-in Organization object, served when the org folder does not describe it itself.

Exporters read it to learn the org id and edition; fields follow a real Organization record
(CumulusCI recording, API 52) trimmed to the commonly used ones.
"""

from __future__ import annotations

from typing import Any

from .describes import make_field, make_sobject
from .jsonlit import Lit

_ADDRESS_PARTS = (
    "Street",
    "City",
    "State",
    "PostalCode",
    "Country",
    "Latitude",
    "Longitude",
    "GeocodeAccuracy",
)

_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("Id", "id", "Organization ID"),
    ("Name", "string", "Name"),
    ("Division", "string", "Division"),
    ("Street", "textarea", "Street"),
    ("City", "string", "City"),
    ("State", "string", "State/Province"),
    ("PostalCode", "string", "Zip/Postal Code"),
    ("Country", "string", "Country"),
    ("Latitude", "double", "Latitude"),
    ("Longitude", "double", "Longitude"),
    ("GeocodeAccuracy", "picklist", "Geocode Accuracy"),
    ("Address", "address", "Address"),
    ("Phone", "phone", "Phone"),
    ("Fax", "phone", "Fax"),
    ("PrimaryContact", "string", "Primary Contact"),
    ("DefaultLocaleSidKey", "picklist", "Locale"),
    ("TimeZoneSidKey", "picklist", "Default Time Zone"),
    ("LanguageLocaleKey", "picklist", "Language"),
    ("FiscalYearStartMonth", "int", "Fiscal Year Starts In"),
    ("OrganizationType", "picklist", "Edition"),
    ("NamespacePrefix", "string", "Namespace Prefix"),
    ("InstanceName", "string", "Instance Name"),
    ("IsSandbox", "boolean", "Is Sandbox"),
    ("IsReadOnly", "boolean", "Is Read Only"),
    ("TrialExpirationDate", "datetime", "Trial Expiration Date"),
    ("CreatedDate", "datetime", "Created Date"),
    ("CreatedById", "reference", "Created By ID"),
    ("LastModifiedDate", "datetime", "Last Modified Date"),
    ("LastModifiedById", "reference", "Last Modified By ID"),
    ("SystemModstamp", "datetime", "System Modstamp"),
)


def organization_describe() -> dict[str, Any]:
    """A realistic, read-only Organization describe."""
    fields = []
    for name, kind, label in _FIELDS:
        extra: dict[str, Any] = {"createable": False, "updateable": False}
        if name in _ADDRESS_PARTS:
            extra["compoundFieldName"] = "Address"
        if kind == "reference":
            extra.update(referenceTo=["User"], relationshipName=name[:-2])
        fields.append(make_field(name, kind, label, **extra))
    return make_sobject(
        "Organization",
        "00D",
        fields,
        label="Organization",
        labelPlural="Organizations",
        createable=False,
        deletable=False,
        layoutable=False,
        replicateable=False,
        searchable=False,
        updateable=False,
    )


def organization_record(org_id: str, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The one Organization row; `overrides` (org.json "organization") replaces any value."""
    record: dict[str, Any] = {
        "Id": org_id,
        "Name": name,
        "Division": None,
        "Street": None,
        "City": None,
        "State": None,
        "PostalCode": None,
        "Country": "US",
        "Latitude": None,
        "Longitude": None,
        "GeocodeAccuracy": None,
        "Address": {
            "city": None,
            "country": "US",
            "geocodeAccuracy": None,
            "latitude": None,
            "longitude": None,
            "postalCode": None,
            "state": None,
            "street": None,
        },
        "Phone": None,
        "Fax": None,
        "PrimaryContact": "Fake Admin",
        "DefaultLocaleSidKey": "en_US",
        "TimeZoneSidKey": "America/Los_Angeles",
        "LanguageLocaleKey": "en_US",
        "FiscalYearStartMonth": Lit("1"),
        "OrganizationType": "Developer Edition",
        "NamespacePrefix": None,
        "InstanceName": "FAKE1",
        "IsSandbox": False,
        "IsReadOnly": False,
        "TrialExpirationDate": None,
        "CreatedDate": "2024-01-01T00:00:00.000+0000",
        "CreatedById": "005000000000001AAA",
        "LastModifiedDate": "2024-01-01T00:00:00.000+0000",
        "LastModifiedById": "005000000000001AAA",
        "SystemModstamp": "2024-01-01T00:00:00.000+0000",
    }
    record.update(overrides)
    record["Id"] = org_id
    return record
