"""org.json quirks over the Salesforce defaults, seen through unmodified simple-salesforce: objects
that refuse unfiltered or any queries, hidden and version-gated fields, queryAll-only rows, query
timeouts on big objects, and the Bulk refusals the Bulk module asks for."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from plugin.fakeorg import ApiError, FakeOrgError, FakeOrgServer, load_org, sf_id
from plugin.fakeorg.describes import make_field, make_sobject
from plugin.fakeorg.quirks import Quirks
from plugin.fakeorg.table import Field

MINI = Path(__file__).parent / "orgs" / "mini"
EVENT = Path(__file__).resolve().parents[2] / "fixtures" / "orgs" / "sources" / "cumulusci" / "Event_describe.json"
QUIRKS = {
    "hidden_fields": {"Account": ["AnnualRevenue"]},
    "field_versions": {"Account": {"Rating": "60.0"}},
    "query_timeout_rows": {"Contact": 3},
    "not_bulk": ["Contact"],
}


def build_org(root: Path) -> Path:
    org = shutil.copytree(MINI, root)
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    (org / "org.json").write_text(json.dumps({**settings, "quirks": QUIRKS}), encoding="utf-8")
    shutil.copy(EVENT, org / "describe" / "Event.json")
    link_fields = [make_field("Id", "id"), make_field("ContentDocumentId", "reference"),
                   make_field("LinkedEntityId", "reference"), make_field("IsDeleted", "boolean")]  # fmt: skip
    for name, prefix, fields in [
        ("ContentDocumentLink", "06A", link_fields),
        ("ActivityHistory", "08h", [make_field("Id", "id"), make_field("Subject", "string")]),
        ("AccountChangeEvent", "1CE", [make_field("Id", "id")]),
    ]:
        (org / "describe" / f"{name}.json").write_text(json.dumps(make_sobject(name, prefix, fields)), encoding="utf-8")
    links = [{"Id": sf_id("06A", n), "ContentDocumentId": sf_id("069", n), "LinkedEntityId": sf_id("001", 1),
              "IsDeleted": False}
             for n in (1, 2)]  # fmt: skip
    (org / "records" / "ContentDocumentLink.json").write_text(json.dumps(links), encoding="utf-8")
    events = [
        {"Id": sf_id("00U", 1), "Subject": "live", "IsDeleted": False, "IsArchived": False},
        {"Id": sf_id("00U", 2), "Subject": "archived", "IsDeleted": False, "IsArchived": True},
        {"Id": sf_id("00U", 3), "Subject": "deleted", "IsDeleted": True, "IsArchived": False},
    ]
    (org / "records" / "Event.json").write_text(json.dumps(events), encoding="utf-8")
    return org


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOrgServer]:
    with FakeOrgServer(build_org(tmp_path_factory.mktemp("quirks") / "org")) as server:
        yield server


@pytest.fixture
def sf(quirky: FakeOrgServer) -> Iterator[Salesforce]:
    with quirky.client_session() as session:
        yield Salesforce(
            instance_url=quirky.instance_url, session_id=quirky.access_token, session=session, version="62.0"
        )


def _error(sf: Salesforce, soql: str) -> dict[str, str]:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    body: dict[str, str] = info.value.content[0]
    return body


def test_content_document_link_refuses_unfiltered_queries(sf: Salesforce) -> None:
    message = (
        "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId "
        "or LinkedEntityId using the equals operator or multiple Id's using the IN operator."
    )
    assert _error(sf, "SELECT Id FROM ContentDocumentLink") == {"message": message, "errorCode": "MALFORMED_QUERY"}
    for refused in (
        "SELECT Id FROM ContentDocumentLink WHERE IsDeleted = false",
        f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId != '{sf_id('001', 1)}'",
        f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '{sf_id('001', 1)}' OR IsDeleted = false",
    ):
        assert _error(sf, refused)["errorCode"] == "MALFORMED_QUERY", refused
    rows = sf.query(
        f"SELECT Id FROM ContentDocumentLink WHERE IsDeleted = false AND LinkedEntityId = '{sf_id('001', 1)}'"
    )
    assert rows["totalSize"] == 2
    ids = ", ".join(f"'{sf_id('069', n)}'" for n in (1, 2, 3))
    assert sf.query(f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId IN ({ids})")["totalSize"] == 2


@pytest.mark.parametrize("name", ["ActivityHistory", "AccountChangeEvent"])
def test_objects_that_support_no_query(sf: Salesforce, name: str) -> None:
    expected = {"message": f"entity type {name} does not support query", "errorCode": "INVALID_TYPE_FOR_OPERATION"}
    assert _error(sf, f"SELECT Id FROM {name}") == expected
    assert any(o["name"] == name and o["queryable"] for o in sf.describe()["sobjects"])  # the describe does not say


def test_hidden_fields_are_gone_from_describe_and_queries(sf: Salesforce) -> None:
    names = {f["name"] for f in sf.restful("sobjects/Account/describe")["fields"]}
    assert "AnnualRevenue" not in names and "Name" in names
    error = _error(sf, "SELECT Id, AnnualRevenue FROM Account")
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(
        "No such column 'AnnualRevenue' on entity 'Account'. If you are attempting to use a custom field, be sure "
        "to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )
    assert "AnnualRevenue" not in sf.restful(f"sobjects/Account/{sf_id('001', 1)}")


def test_fields_exist_only_from_their_api_version(quirky: FakeOrgServer, sf: Salesforce) -> None:
    assert "Rating" in {f["name"] for f in sf.restful("sobjects/Account/describe")["fields"]}
    assert sf.query("SELECT Rating FROM Account LIMIT 1")["done"]
    with quirky.client_session() as session:
        old = Salesforce(
            instance_url=quirky.instance_url, session_id=quirky.access_token, session=session, version="59.0"
        )
        assert "Rating" not in {f["name"] for f in old.restful("sobjects/Account/describe")["fields"]}
        assert _error(old, "SELECT Rating FROM Account")["errorCode"] == "INVALID_FIELD"


def test_deleted_and_archived_rows_only_in_query_all(sf: Salesforce) -> None:
    soql = "SELECT Subject FROM Event ORDER BY Subject"
    assert [r["Subject"] for r in sf.query_all(soql)["records"]] == ["live"]
    assert [r["Subject"] for r in sf.query_all(soql, include_deleted=True)["records"]] == [
        "archived",
        "deleted",
        "live",
    ]


def test_big_objects_time_out_over_rest(sf: Salesforce) -> None:
    assert _error(sf, "SELECT Id FROM Contact") == {
        "message": "Your query request was running for too long.",
        "errorCode": "QUERY_TIMEOUT",
    }
    assert len(sf.query("SELECT Id FROM Contact LIMIT 3")["records"]) == 3


def test_bulk_refusals_for_the_bulk_module(quirky: FakeOrgServer) -> None:
    quirks = quirky.org.quirks
    account = quirky.org.table("Account")
    assert account is not None
    fields = [f for f in account.fields() if f.name in ("Id", "Name")]
    assert quirks.bulk_entity_refusal("Account") is None and quirks.bulk_field_refusal(fields) is None
    refused = quirks.bulk_field_refusal([*fields, Field("BillingAddress", "address")])
    assert refused is not None and refused.body() == [
        {"message": "Selecting compound data not supported in Bulk Query", "errorCode": "API_ERROR"}
    ]
    refused = quirks.bulk_entity_refusal("Attachment")
    assert refused is not None and refused.body() == [
        {"message": "Entity 'Attachment' is not supported by the Bulk API.", "errorCode": "INVALIDENTITY"}
    ]
    assert quirks.bulk_entity_refusal("Document") is None
    refused = quirks.bulk_field_refusal([Field("Body", "base64")])
    assert refused is not None and refused.status == 400
    assert refused.body()[0]["message"] == "FeatureNotEnabled : Cannot serialize value for 'Body' in CSV format"
    for name in ("Contact", "ActivityHistory", "OpportunityChangeEvent"):
        refused = quirks.bulk_entity_refusal(name)
        assert refused is not None and refused.error_code == "INVALIDENTITY", name


def test_defaults_can_be_switched_off_and_replaced(tmp_path: Path) -> None:
    quirks = Quirks.from_settings({"quirks": {"defaults": False, "not_queryable": ["Account"]}})
    assert quirks.refusal("ActivityHistory") is None
    refused = quirks.refusal("account")
    assert refused is not None and refused.message == "entity type account does not support query"
    assert quirks.bulk_entity_refusal("Attachment") is None


def test_bad_quirks_are_a_clear_error(tmp_path: Path) -> None:
    org = shutil.copytree(MINI, tmp_path / "org")
    (org / "org.json").write_text(json.dumps({"quirks": {"field_versions": {"Account": {"Rating": "soon"}}}}))
    with pytest.raises(FakeOrgError, match=r"org.json quirks: field_versions: Value error, 'soon' is not an API"):
        load_org(org)
    (org / "org.json").write_text(json.dumps({"quirks": {"hiden_fields": {}}}))
    with pytest.raises(FakeOrgError, match=r"org.json quirks: hiden_fields: Extra inputs are not permitted"):
        load_org(org)


def test_org_entries_add_to_the_defaults_and_replace_per_object(quirky: FakeOrgServer) -> None:
    quirks = Quirks.from_settings(
        {
            "quirks": {
                "requires_filter": {"Contact": {"fields": ["AccountId"], "operators": ["="], "message": "need it"}},
                "not_queryable": {"Account": {"error_code": "INSUFFICIENT_ACCESS", "message": "no access"}},
            }
        }
    )
    org = quirky.org
    with pytest.raises(ApiError) as info:
        quirks.check_query(org, "SELECT Id FROM Contact")
    assert (info.value.status, info.value.body()) == (400, [{"message": "need it", "errorCode": "MALFORMED_QUERY"}])
    quirks.check_query(org, f"SELECT Id FROM Contact WHERE AccountId = '{sf_id('001', 1)}'")
    with pytest.raises(ApiError):
        quirks.check_query(org, f"SELECT Id FROM Contact WHERE AccountId IN ('{sf_id('001', 1)}')")
    with pytest.raises(ApiError) as info:
        quirks.check_query(org, "SELECT Id FROM Account")
    assert info.value.body() == [{"message": "no access", "errorCode": "INSUFFICIENT_ACCESS"}]
    with pytest.raises(ApiError, match="does not support query"):  # the defaults still apply
        quirks.check_query(org, "SELECT Id FROM AccountChangeEvent")
