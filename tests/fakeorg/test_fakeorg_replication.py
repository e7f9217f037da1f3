"""sObject Get Deleted / Get Updated through simple-salesforce's `sf.<Obj>.deleted()` / `.updated()`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from plugin.fakeorg import FakeOrgServer, sf_id, start_fake_org
from tests.fakeorg.genorg import generated_org

UTC = dt.UTC


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_deleted_lists_recycle_bin_rows_in_the_window(sf: Salesforce) -> None:
    body = sf.Account.deleted(at(2024, 2, 1), at(2024, 2, 14, 0, 0, 30))
    assert body == {
        "deletedRecords": [{"id": sf_id("001", 13), "deletedDate": "2024-02-13T23:59:59.000+0000"}],
        "earliestDateAvailable": "2024-02-01T00:00:00.000+0000",
        "latestDateCovered": "2024-02-14T00:00:00.000+0000",  # seconds are ignored
    }
    assert sf.Account.deleted(at(2024, 2, 1), at(2024, 2, 13, 23, 59, 59))["deletedRecords"] == []  # end is exclusive
    later = sf.Account.deleted(at(2024, 3, 1), at(2024, 3, 2))
    assert later["deletedRecords"] == [] and later["earliestDateAvailable"] == "2024-02-13T23:59:00.000+0000"
    assert sf.Attachment.deleted(at(2024, 4, 1), at(2024, 4, 6))["deletedRecords"] == [
        {"id": "00P000000000003EAA", "deletedDate": "2024-04-05T00:00:00.000+0000"}
    ]


def test_updated_lists_live_rows_changed_in_the_window(sf: Salesforce) -> None:
    body = sf.Account.updated(at(2024, 2, 2), at(2024, 2, 5))
    assert body == {"ids": [sf_id("001", n) for n in (2, 3, 4)], "latestDateCovered": "2024-02-05T00:00:00.000+0000"}
    assert sf.Account.updated(at(2024, 2, 13), at(2024, 2, 14))["ids"] == []  # the deleted one is not "updated"
    offset = dt.timezone(dt.timedelta(hours=2))
    assert sf.Account.updated(dt.datetime(2024, 2, 3, 2, tzinfo=offset), at(2024, 2, 4))["ids"] == [sf_id("001", 3)]


@pytest.mark.parametrize(
    ("start", "end", "code", "message"),
    [
        (at(2024, 2, 5), at(2024, 2, 1), "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"),
        (at(2024, 2, 1, 0, 0), at(2024, 2, 1, 0, 0, 59), "INVALID_REPLICATION_DATE", "by more than one minute"),
        # simple-salesforce writes a naive datetime as "2024-02-01T00:00:00:" (no offset), which Salesforce refuses
        (dt.datetime(2024, 2, 1), at(2024, 2, 5), "INVALID_REPLICATION_DATE", "'2024-02-01T00:00:00:' is not a valid"),
    ],
)
def test_bad_windows_are_malformed_requests(
    sf: Salesforce, start: dt.datetime, end: dt.datetime, code: str, message: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.updated(start, end)
    assert info.value.content[0]["errorCode"] == code and message in info.value.content[0]["message"]


def test_missing_argument_and_unknown_object(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("sobjects/Account/deleted/", params={"start": "2024-01-01T00:00:00Z"})
    assert info.value.content == [{"message": "end was not specified", "errorCode": "MISSING_ARGUMENT"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Xyzzy.deleted(at(2024, 1, 1), at(2024, 1, 2))


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOrgServer]:
    root = generated_org(
        tmp_path_factory.mktemp("rep") / "o", {"Account": {"count": 4000, "seed": 11}}, objects=("Account",)
    )
    with start_fake_org(root) as server:
        yield server


@pytest.fixture
def vsf(volume: FakeOrgServer) -> Iterator[Salesforce]:
    with requests.Session() as session:
        session.verify = str(volume.ca_bundle)
        session.trust_env = False
        yield Salesforce(instance_url=volume.instance_url, session_id=volume.access_token, session=session)


def test_generated_rows_agree_with_soql(vsf: Salesforce) -> None:
    start, end = at(2022, 1, 1), at(2022, 7, 1)
    window = "SystemModstamp >= 2022-01-01T00:00:00Z AND SystemModstamp < 2022-07-01T00:00:00Z"
    live = [r["Id"] for r in vsf.query_all_iter(f"SELECT Id FROM Account WHERE {window}")]
    assert vsf.Account.updated(start, end)["ids"] == live and len(live) > 100
    gone = list(vsf.query_all_iter(f"SELECT Id, SystemModstamp FROM Account WHERE IsDeleted = true AND {window}", True))
    deleted = vsf.Account.deleted(start, end)["deletedRecords"]
    assert deleted == [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in gone] and len(deleted) > 2


def test_generated_paths_are_request_counted(volume: FakeOrgServer, vsf: Salesforce) -> None:
    before = volume.api_calls
    vsf.Account.updated(at(2021, 1, 1), at(2021, 1, 2))
    vsf.Account.deleted(at(2021, 1, 1), at(2021, 1, 2))
    assert volume.api_calls == before + 2
    assert [e.path for e in volume.request_log[-2:]] == [
        "/services/data/v59.0/sobjects/Account/updated/",
        "/services/data/v59.0/sobjects/Account/deleted/",
    ]


def test_mini_path_is_exact(fake: FakeOrgServer, sf: Salesforce) -> None:
    sf.Contact.updated(at(2024, 1, 1), at(2024, 1, 2))
    entry = fake.request_log[-1]
    assert entry.path == "/services/data/v62.0/sobjects/Contact/updated/" and entry.status == 200
    assert entry.query_string == "start=2024-01-01T00%3A00%3A00%2B00%3A00&end=2024-01-02T00%3A00%3A00%2B00%3A00"
