"""Bulk API 2.0 jobs under the org's quirks, through unmodified simple-salesforce 1.12.10: the same
refusals as REST (one wording, from quirks.py), objects Bulk does not serve, no REST query timeout,
and hidden / version-gated fields bound at job creation."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from plugin.fakeorg import FakeOrgServer, sf_id
from plugin.fakeorg.bulk import BulkJob
from plugin.fakeorg.describes import make_field, make_sobject

MINI = Path(__file__).parent / "orgs" / "mini"
REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "fixtures" / "orgs" / "sources" / "cumulusci" / "Event_describe.json"
CONTENT_VERSION = REPO / "fixtures" / "orgs" / "demo" / "describe" / "ContentVersion.json"
QUIRKS = {
    "hidden_fields": {"Account": ["AnnualRevenue"]},
    "field_versions": {"Account": {"Rating": "60.0"}},
    "query_timeout_rows": {"Contact": 3},
    "not_bulk": ["Event"],
}
LINK_MESSAGE = (
    "Implementation restriction: ContentDocumentLink requires a filter by a single Id on ContentDocumentId "
    "or LinkedEntityId using the equals operator or multiple Id's using the IN operator."
)


def _org(root: Path) -> Path:
    org = shutil.copytree(MINI, root)
    settings = json.loads((org / "org.json").read_text(encoding="utf-8"))
    (org / "org.json").write_text(json.dumps({**settings, "quirks": QUIRKS}), encoding="utf-8")
    shutil.copy(EVENT, org / "describe" / "Event.json")
    shutil.copy(CONTENT_VERSION, org / "describe" / "ContentVersion.json")
    link_fields = [make_field("Id", "id"), make_field("ContentDocumentId", "reference"),
                   make_field("LinkedEntityId", "reference")]  # fmt: skip
    for name, prefix, fields in [
        ("ContentDocumentLink", "06A", link_fields),
        ("ActivityHistory", "08h", [make_field("Id", "id")]),
    ]:
        (org / "describe" / f"{name}.json").write_text(json.dumps(make_sobject(name, prefix, fields)), encoding="utf-8")
    links = [{"Id": sf_id("06A", n), "ContentDocumentId": sf_id("069", n), "LinkedEntityId": sf_id("001", n)}
             for n in (1, 2)]  # fmt: skip
    (org / "records" / "ContentDocumentLink.json").write_text(json.dumps(links), encoding="utf-8")
    return org


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOrgServer]:
    with FakeOrgServer(_org(tmp_path_factory.mktemp("bulkquirks") / "org")) as server:
        yield server


@pytest.fixture
def connect(quirky: FakeOrgServer) -> Iterator[Callable[[str], Salesforce]]:
    """simple-salesforce clients of the quirky org at a given API version."""
    sessions = []

    def make(version: str) -> Salesforce:
        sessions.append(quirky.client_session())
        return Salesforce(
            instance_url=quirky.instance_url, session_id=quirky.access_token, session=sessions[-1], version=version
        )

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def sf(connect: Callable[[str], Salesforce]) -> Salesforce:
    return connect("62.0")


def _bulk_error(sf: Salesforce, obj: str, soql: str) -> dict[str, str]:
    with pytest.raises(SalesforceMalformedRequest) as info:
        next(getattr(sf.bulk2, obj).query(soql, wait=0))
    [body] = info.value.content
    return dict(body)


def _rest_error(sf: Salesforce, soql: str) -> dict[str, str]:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    [body] = info.value.content
    return dict(body)


def _rows(pages: Iterator[str]) -> list[list[str]]:
    return [row for page in pages for row in list(csv.reader(io.StringIO(page, newline="")))[1:]]


@pytest.mark.parametrize(
    "obj",
    [
        "Attachment",  # Salesforce's default not_bulk list
        "Event",  # org.json not_bulk
        "ActivityHistory",  # no query supports it
    ],
)
def test_objects_bulk_does_not_serve_are_invalidentity(quirky: FakeOrgServer, sf: Salesforce, obj: str) -> None:
    before = len(quirky.app.bulk.listing()["records"])
    assert _bulk_error(sf, obj, f"SELECT Id FROM {obj}") == {
        "message": f"Entity '{obj}' is not supported by the Bulk API.",
        "errorCode": "INVALIDENTITY",
    }
    assert len(quirky.app.bulk.listing()["records"]) == before


def test_filter_quirks_refuse_bulk_jobs_as_rest_does(sf: Salesforce) -> None:
    unfiltered = "SELECT Id FROM ContentDocumentLink"
    expected = {"message": LINK_MESSAGE, "errorCode": "MALFORMED_QUERY"}
    assert _bulk_error(sf, "ContentDocumentLink", unfiltered) == _rest_error(sf, unfiltered) == expected
    filtered = f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId = '{sf_id('001', 2)}'"
    assert _rows(sf.bulk2.ContentDocumentLink.query(filtered, wait=0)) == [[sf_id("06A", 2)]]


@pytest.mark.parametrize(
    ("obj", "soql", "message"),
    [
        ("Account", "SELECT Id, BillingAddress FROM Account", "Selecting compound data not supported in Bulk Query"),
        (
            "ContentVersion",
            "SELECT Id, VersionData FROM ContentVersion",
            "FeatureNotEnabled : Cannot serialize value for 'VersionData' in CSV format",
        ),
    ],
)
def test_compound_and_base64_fields_use_the_quirks_wording(sf: Salesforce, obj: str, soql: str, message: str) -> None:
    assert _bulk_error(sf, obj, soql) == {"message": message, "errorCode": "API_ERROR"}


def test_rest_query_timeout_does_not_apply_to_bulk(sf: Salesforce) -> None:
    soql = "SELECT Id FROM Contact"
    assert _rest_error(sf, soql)["errorCode"] == "QUERY_TIMEOUT"  # 4 rows > query_timeout_rows 3
    assert [r[0] for r in _rows(sf.bulk2.Contact.query(soql, wait=0))] == [sf_id("003", n) for n in range(1, 5)]


@pytest.mark.parametrize(
    "soql",
    ["SELECT Id, AnnualRevenue FROM Account", "SELECT Id, Parent.AnnualRevenue FROM Account"],
)
def test_hidden_fields_are_invalid_field_in_bulk_as_in_rest(sf: Salesforce, soql: str) -> None:
    bulk = _bulk_error(sf, "Account", soql)
    assert bulk == _rest_error(sf, soql)
    assert (
        bulk["errorCode"] == "INVALID_FIELD" and "No such column 'AnnualRevenue' on entity 'Account'" in bulk["message"]
    )


def test_version_gated_fields_follow_the_job_version(connect: Callable[[str], Salesforce]) -> None:
    soql = "SELECT Id, Rating FROM Account WHERE Id = '001000000000001AAA'"
    old = connect("59.0")
    assert _bulk_error(old, "Account", soql) == _rest_error(old, soql)
    assert _rest_error(old, soql)["errorCode"] == "INVALID_FIELD"
    [page] = connect("60.0").bulk2.Account.query(soql, wait=0)
    assert page.startswith('"Id","Rating"\n"001000000000001AAA",')


def test_results_render_from_the_view_bound_at_creation(quirky: FakeOrgServer, sf: Salesforce) -> None:
    """Result pages stream after the handler returns; they must not fall back to the unfiltered org."""
    created: list[BulkJob] = []
    quirky.app.bulk.on_create.append(created.append)
    try:
        pages = list(sf.bulk2.Account.query("SELECT Id, Name, Parent.Name FROM Account", max_records=8, wait=0))
    finally:
        quirky.app.bulk.on_create.clear()
    [job] = created
    assert "AnnualRevenue" not in {f.name for f in job.result.table.fields()}
    assert quirky.org.table("Account") is not job.result.table  # the view, not the loaded table
    assert all(p.startswith('"Id","Name","Parent.Name"\n') for p in pages)
    assert len(_rows(iter(pages))) == 19
