"""org.json generators: deterministic synthetic rows of every describe type, combined with records/ files."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from plugin.fakeorg import FakeOrg, FakeOrgError, FakeOrgServer, load_org, sf_id, start_fake_org, to18
from plugin.fakeorg.generators import ADMIN_USER_ID, generated_id
from plugin.fakeorg.jsonlit import Lit, is_number_literal
from plugin.fakeorg.query import run_query
from plugin.fakeorg.scans import stamp_range
from plugin.fakeorg.table import SObjectTable
from plugin.fakeorg.values import parse_datetime
from tests.fakeorg.genorg import generated_org

COUNTS = {"Account": 3000, "Contact": 2000, "Opportunity": 400, "Case": 300, "Lead": 300, "Custom__c": 300}
SAMPLE = 300


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generators = {name: {"count": n, "seed": 7} for name, n in COUNTS.items()}
    return generated_org(tmp_path_factory.mktemp("gen") / "org", generators)


@pytest.fixture(scope="module")
def org(gen_dir: Path) -> FakeOrg:
    return load_org(gen_dir)


def table_of(org: FakeOrg, name: str) -> SObjectTable:
    table = org.table(name)
    assert table is not None
    return table


def sample(table: SObjectTable, n: int = SAMPLE) -> Iterator[dict[str, Any]]:
    for pos in range(table.file_count, table.file_count + n):
        yield table.row(pos)


def ids(org: FakeOrg, soql: str, *, include_deleted: bool = False) -> list[str]:
    return [str(r["Id"]) for r in run_query(org, soql, include_deleted=include_deleted).rows]


def total(org: FakeOrg, soql: str, *, include_deleted: bool = False) -> int:
    return run_query(org, soql, include_deleted=include_deleted).total_size


def test_rows_are_deterministic_and_randomly_accessible(gen_dir: Path, org: FakeOrg, tmp_path: Path) -> None:
    again = table_of(load_org(gen_dir), "Account")
    table = table_of(org, "Account")
    names = [f.name for f in table.fields()]
    for index in (0, 1, 999, 2999):
        assert {n: table.row(index).get(n) for n in names} == {n: again.row(index).get(n) for n in names}
    in_order = [r.get("Name") for _, r in zip(range(40), table.records(), strict=False)]
    assert in_order == [table.row(i).get("Name") for i in range(40)]
    assert table.get(generated_id("001", 1234)) is not None and table.get(generated_id("001", 3000)) is None
    assert table.get(generated_id("001", 1234)[:15]).get("Name") == table.row(1234).get("Name")  # type: ignore[union-attr]
    other = generated_org(tmp_path / "other", {"Account": {"count": 3000, "seed": 8}}, objects=("Account",))
    reseeded = table_of(load_org(other), "Account")
    differing = sum(reseeded.row(i).get("Name") != table.row(i).get("Name") for i in range(100))
    assert differing > 80


def _check_value(org: FakeOrg, table: SObjectTable, entry: dict[str, Any], value: Any) -> None:
    kind, name = entry["type"], entry["name"]
    where = f"{table.name}.{name}={value!r}"
    if kind == "id":
        assert to18(value[:15]) == value and value[:3] == table.describe["keyPrefix"], where
    elif kind == "reference":
        targets = tuple(entry["referenceTo"])
        assert value == ADMIN_USER_ID or org.find(value, targets) is not None, where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind in ("int", "double", "currency", "percent"):
        assert isinstance(value, Lit) and is_number_literal(value), where
        whole, _, frac = value.lstrip("-").partition(".")
        scale, precision = int(entry["scale"]), int(entry["precision"])
        assert len(frac) <= scale and len(whole) <= max(precision - scale, 9), where
    elif kind == "date":
        dt.date.fromisoformat(value)
    elif kind == "datetime":
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", value) and parse_datetime(value), where
    elif kind in ("picklist", "multipicklist"):
        allowed = {p["value"] for p in entry["picklistValues"] if p["active"]}
        assert set(value.split(";")) <= allowed, where
    elif kind == "email":
        assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", value), where
    elif kind == "phone":
        assert re.fullmatch(r"\(\d{3}\) 555-\d{4}", value), where
    elif kind == "url":
        assert value.startswith("https://"), where
    elif kind == "time":
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.000Z", value), where
    elif kind == "address":
        parts = [f for f in table.describe["fields"] if f["compoundFieldName"] == name]
        assert len(value) == len(parts) and list(value) == sorted(value), where
    else:
        assert kind in ("string", "textarea") and isinstance(value, str) and len(value) <= int(entry["length"]), where


def test_every_field_gets_a_value_of_its_type(org: FakeOrg) -> None:
    for name in COUNTS:
        table = table_of(org, name)
        seen: dict[str, set[bool]] = {}
        for row in sample(table):
            for entry in table.describe["fields"]:
                value = row.get(entry["name"])
                seen.setdefault(entry["name"], set()).add(value is None)
                if value is not None:
                    _check_value(org, table, entry, value)
        for entry in table.describe["fields"]:
            if entry["type"] in ("base64",) or entry["name"] == "MasterRecordId":
                continue
            target = entry["referenceTo"][0] if entry["referenceTo"] else ""
            if target and org.table(target) is None and entry["nillable"] and target not in ("User", "Group"):
                assert seen[entry["name"]] == {True}, f"{name}.{entry['name']} points at an absent object"
                continue
            assert False in seen[entry["name"]], f"{name}.{entry['name']} is never set"
            if entry["nillable"] and entry["type"] not in ("boolean", "address") and entry["name"] != "Name":
                assert True in seen[entry["name"]], f"{name}.{entry['name']} is never null"


def test_references_reach_generated_parents(org: FakeOrg) -> None:
    contacts = table_of(org, "Contact")
    account_ids = [r.get("AccountId") for r in sample(contacts, 100)]
    assert all(a is None or a[:5] == "0010G" for a in account_ids) and any(account_ids)
    rows = run_query(org, "SELECT Id, Account.Name FROM Contact WHERE AccountId != null LIMIT 5", include_deleted=True)
    for record in rows.rows:
        parent = table_of(org, "Account").get(record["AccountId"])
        assert parent is not None and parent.get("Name")


def test_text_sometimes_carries_csv_hazards(org: FakeOrg) -> None:
    texts = [r.get("Description") for r in sample(table_of(org, "Account"))]
    assert any("," in t and '"' in t for t in texts if t)
    assert any("\r\n" in t for t in texts if t) and any("\n" in t.replace("\r\n", "") for t in texts if t)
    assert any(any(ord(c) > 127 for c in t) for t in texts if t)
    assert any(", Inc." in str(r.get("Name")) for r in sample(table_of(org, "Account")))


def test_audit_dates_are_ordered_and_spread_over_the_window(org: FakeOrg) -> None:
    table = table_of(org, "Account")
    start, end = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
    created_before = start
    for index in range(0, 3000, 7):
        row = table.row(index)
        created, modified, stamp = (
            parse_datetime(row.get(f)) for f in ("CreatedDate", "LastModifiedDate", "SystemModstamp")
        )
        assert created and modified and stamp
        assert start <= created <= modified <= stamp <= end and created >= created_before
        created_before = created
    assert parse_datetime(table.row(0).get("CreatedDate")) < start + dt.timedelta(days=2)  # type: ignore[operator]
    assert parse_datetime(table.row(2999).get("CreatedDate")) > end - dt.timedelta(days=2)  # type: ignore[operator]


def test_deleted_rows_are_one_in_n_and_only_seen_by_query_all(org: FakeOrg) -> None:
    assert total(org, "SELECT COUNT() FROM Account") == 3000 - 60
    assert total(org, "SELECT COUNT() FROM Account", include_deleted=True) == 3000
    deleted = ids(org, "SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert len(deleted) == 60 and not set(deleted) & set(ids(org, "SELECT Id FROM Account"))
    assert len({int(d[5:15]) % 50 for d in deleted}) == 1  # evenly spread: every 50th row


def test_incremental_filter_matches_a_plain_scan(org: FakeOrg) -> None:
    since = "2023-06-01T00:00:00Z"
    expected = [
        r["Id"]
        for r in table_of(org, "Account").records()
        if r.get("IsDeleted") is False and parse_datetime(r.get("SystemModstamp")) > parse_datetime(since)  # type: ignore[operator]
    ]
    got = ids(org, f"SELECT Id FROM Account WHERE SystemModstamp > {since}")
    assert got == expected and 0 < len(got) < 2940
    assert total(org, f"SELECT COUNT() FROM Account WHERE LastModifiedDate > {since}") < 2940


@pytest.mark.parametrize(
    "where",
    [
        "CreatedDate >= 2021-03-01T00:00:00Z AND CreatedDate < 2021-04-01T00:00:00Z",
        "LastModifiedDate <= 2020-06-01T12:00:00.000+0000",
        "SystemModstamp > 2024-12-01T00:00:00Z AND SystemModstamp <= 2024-12-20T00:00:00Z",
        "SystemModstamp > 2023-01-01T00:00:00+05:00 AND Id < '0010G0000002000' AND Name != null",
    ],
)
def test_time_windows_skip_rows_without_changing_the_answer(org: FakeOrg, where: str) -> None:
    pruned = ids(org, f"SELECT Id FROM Account WHERE {where}", include_deleted=True)
    full = ids(org, f"SELECT Id FROM Account WHERE ({where}) OR Name = null", include_deleted=True)
    assert pruned == full and pruned  # OR defeats the pruning: a full scan finds the same rows
    assert total(org, f"SELECT COUNT() FROM Account WHERE {where}", include_deleted=True) == len(pruned)
    stamp = table_of(org, "Account").row(1500).get("SystemModstamp")
    assert generated_id("001", 1500) in ids(
        org, f"SELECT Id FROM Account WHERE SystemModstamp = {stamp}", include_deleted=True
    )


def test_a_recent_window_only_looks_at_recent_rows(org: FakeOrg) -> None:
    table = table_of(org, "Account")
    recent = stamp_range(table, [(">", parse_datetime("2024-12-01T00:00:00Z"))])
    assert 2200 < recent.start < 2500 and recent.stop == 3000  # created within a year before the window
    early = stamp_range(table, [("<", parse_datetime("2020-02-01T00:00:00Z"))])
    assert early == range(51)  # rows 0..50 are created in the first 31 of 1826 days
    assert stamp_range(table, [(">", parse_datetime("2025-06-01T00:00:00Z"))]) == range(3000, 3000)


def test_id_range_counts_agree_with_a_scan(org: FakeOrg) -> None:
    low, high = generated_id("001", 100), generated_id("001", 250)
    where = f"Id > '{low}' AND Id <= '{high[:15]}'"
    closed_form = total(org, f"SELECT COUNT() FROM Account WHERE {where}", include_deleted=True)
    scanned = ids(org, f"SELECT Id FROM Account WHERE {where} AND Name != null", include_deleted=True)
    assert closed_form == len(scanned) == 150
    assert scanned == [generated_id("001", i) for i in range(101, 251)]
    live = total(org, f"SELECT COUNT() FROM Account WHERE {where}")
    assert live == len(ids(org, f"SELECT Id FROM Account WHERE {where} AND IsDeleted = false"))
    last = ids(org, f"SELECT Id FROM Account WHERE {where} ORDER BY Id DESC LIMIT 2", include_deleted=True)
    assert last == [generated_id("001", 250), generated_id("001", 249)]


def test_file_rows_come_first_and_id_order_merges(tmp_path: Path) -> None:
    root = generated_org(tmp_path / "o", {"Account": {"count": 50}, "Contact": {"count": 30}}, records_from_mini=True)
    org = load_org(root)
    table = table_of(org, "Account")
    assert table.size() == 70 and table.file_count == 20
    natural = ids(org, "SELECT Id FROM Account", include_deleted=True)
    assert natural[:20] == [sf_id("001", n) for n in range(1, 21)]
    assert natural[20:] == [generated_id("001", i) for i in range(50)]
    by_id = ids(org, "SELECT Id FROM Account ORDER BY Id", include_deleted=True)
    assert by_id == sorted(natural, key=lambda i: i[:15])
    assert ids(org, "SELECT Id FROM Account ORDER BY Id DESC", include_deleted=True) == by_id[::-1]
    assert total(org, "SELECT COUNT() FROM Account") == 19 + 49
    contact = run_query(org, "SELECT Id, Account.Name FROM Contact ORDER BY Id DESC LIMIT 1", include_deleted=False)
    parent = contact.rows[0].get("AccountId")
    assert parent is None or org.find(parent, ("Account",)) is not None


def test_file_record_in_the_generated_id_space_is_refused(tmp_path: Path) -> None:
    root = generated_org(tmp_path / "o", {"Account": {"count": 5}}, objects=("Account",))
    (root / "records").mkdir()
    (root / "records" / "Account.json").write_text(json.dumps([{"Id": generated_id("001", 2), "Name": "x"}]))
    with pytest.raises(FakeOrgError, match=r"uses the generated id space \(0010G\.\.\.\)"):
        load_org(root)


@pytest.mark.parametrize(
    ("generators", "message"),
    [
        ({"Account": {"count": 5, "size": 3}}, r"unknown keys \['size'\]; allowed: \['count', 'deleted_every'"),
        ({"Account": {"seed": 1}}, r'needs "count"'),
        ({"Account": {"count": -1}}, r"count must be an integer in 0\.\.9999999999, got -1"),
        (
            {"Account": {"count": 1, "start": "2024-01-01T00:00:00Z", "end": "2023-01-01T00:00:00Z"}},
            "end must be after",
        ),
        ({"Account": {"count": 1, "start": "yesterday"}}, r"start must be a datetime like"),
        ({"Nope__c": {"count": 1}}, r"generators for \['nope__c'\] have no describe"),
        ({"Organization": {"count": 2}}, "Organization always has exactly one row"),
        ([1, 2], '"generators" must be an object'),
    ],
)
def test_bad_generator_settings_are_clear_errors(tmp_path: Path, generators: Any, message: str) -> None:
    root = generated_org(tmp_path / "o", generators, objects=("Account",))
    with pytest.raises(FakeOrgError, match=message):
        load_org(root)


@pytest.fixture(scope="module")
def gen_fake(gen_dir: Path) -> Iterator[FakeOrgServer]:
    with start_fake_org(gen_dir) as server:
        yield server


@pytest.fixture
def gen_sf(gen_fake: FakeOrgServer) -> Iterator[Salesforce]:
    with requests.Session() as session:
        session.verify = str(gen_fake.ca_bundle)
        session.trust_env = False
        yield Salesforce(
            instance_url=gen_fake.instance_url, session_id=gen_fake.access_token, session=session, version="62.0"
        )


def test_record_count_matches_what_query_returns(gen_sf: Salesforce) -> None:
    body = gen_sf.restful("limits/recordCount", params={"sObjects": "Account,contact,Nope"})
    assert body == {
        "sObjects": [
            {"count": gen_sf.query("SELECT COUNT() FROM Account")["totalSize"], "name": "Account"},
            {"count": gen_sf.query("SELECT COUNT() FROM Contact")["totalSize"], "name": "Contact"},
        ]
    }
    assert body["sObjects"][0]["count"] == 2940
    everything = {e["name"]: e["count"] for e in gen_sf.restful("limits/recordCount")["sObjects"]}
    assert everything == {**{n: c - c // 50 for n, c in COUNTS.items()}, "Organization": 1}


def test_rest_pages_walk_every_generated_row(gen_fake: FakeOrgServer, gen_sf: Salesforce) -> None:
    before = len(gen_fake.request_log)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    got = [
        r["Id"] for r in gen_sf.query_all_iter("SELECT Id, Subject FROM Case", include_deleted=True, headers=headers)
    ]
    assert got == [generated_id("500", i) for i in range(300)]
    pages = [e for e in gen_fake.request_log[before:] if "/query" in e.path]
    assert len(pages) == 2 and all(e.counted and e.status == 200 for e in pages)
    first = gen_sf.query("SELECT Id, Amount FROM Opportunity", headers=headers)
    assert first["totalSize"] == 392 and len(first["records"]) == 200 and not first["done"]
    amount = first["records"][0]["Amount"]
    assert amount is None or Decimal(str(amount)) >= 0


def test_volume_fixture_loads_without_generating_anything() -> None:
    org = load_org(Path(__file__).resolve().parents[2] / "fixtures" / "orgs" / "volume")
    assert {name: table.size() for name, table in org.tables.items()} == {
        "account": 1_000_000, "contact": 500_000, "opportunity": 200_000, "organization": 1,
    }  # fmt: skip
    assert total(org, "SELECT COUNT() FROM Account") == 980_000  # closed form: no row is generated
    last = ids(org, "SELECT Id FROM Opportunity ORDER BY Id DESC LIMIT 1", include_deleted=True)
    assert last == [generated_id("006", 199_999)]


def test_blob_files_attach_to_generated_rows(tmp_path: Path) -> None:
    root = generated_org(tmp_path / "o", {"Attachment": {"count": 10, "seed": 2}}, objects=("Attachment",))
    body = bytes(range(256)) * 3
    blob = root / "blobs" / "Attachment" / generated_id("00P", 4) / "Body"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(body)
    with start_fake_org(root) as fake, requests.Session() as session:
        session.verify = str(fake.ca_bundle)
        session.trust_env = False
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session, version="62.0")
        rows = {r["Id"]: r["Body"] for r in sf.query_all_iter("SELECT Id, Body FROM Attachment", include_deleted=True)}
        url = f"/services/data/v62.0/sobjects/Attachment/{generated_id('00P', 4)}/Body"
        assert rows == {generated_id("00P", i): (url if i == 4 else None) for i in range(10)}
        assert sf.session.get(f"https://{sf.sf_instance}{url}", headers=sf.headers).content == body


EVENT = Path(__file__).resolve().parents[2] / "fixtures" / "orgs" / "sources" / "cumulusci" / "Event_describe.json"


@pytest.mark.parametrize(
    "query_all_only",
    [
        None,  # Salesforce's default: IsDeleted and IsArchived
        [],  # nothing hidden: the recycle bin shows
        ["IsArchived"],
        ["IsDeleted", "IsAllDayEvent"],  # a flag generated rows set at random: counted by a scan
    ],
)
def test_id_range_count_matches_query_over_archived_file_rows_and_generated_rows(
    tmp_path: Path, query_all_only: list[str] | None
) -> None:
    quirks = {} if query_all_only is None else {"query_all_only": query_all_only}
    root = generated_org(tmp_path / "o", {"Event": {"count": 200, "seed": 5}}, objects=(), extra={"quirks": quirks})
    shutil.copy(EVENT, root / "describe" / "Event.json")
    (root / "records").mkdir()
    flags = [(False, False), (True, False), (False, True), (True, True), (False, False), (True, False)]
    files = [{"Id": sf_id("00U", n), "Subject": f"file {n}", "IsArchived": archived, "IsDeleted": deleted,
              "IsAllDayEvent": False} for n, (archived, deleted) in enumerate(flags, start=1)]  # fmt: skip
    (root / "records" / "Event.json").write_text(json.dumps(files), encoding="utf-8")
    hidden = ("IsDeleted", "IsArchived") if query_all_only is None else tuple(query_all_only)
    where = f"Id > '{sf_id('00U', 1)}' AND Id <= '{generated_id('00U', 150)}'"
    fields = "Id, " + ", ".join(sorted({"IsDeleted", "IsArchived", *hidden}))
    with FakeOrgServer(root) as fake, fake.client_session() as session:
        sf = Salesforce(instance_url=fake.instance_url, session_id=fake.access_token, session=session)
        count = sf.query(f"SELECT COUNT() FROM Event WHERE {where}")["totalSize"]
        rows = list(sf.query_all_iter(f"SELECT {fields} FROM Event WHERE {where}"))
        everything = list(sf.query_all_iter(f"SELECT {fields} FROM Event WHERE {where}", include_deleted=True))
        count_all = sf.query(f"SELECT COUNT() FROM Event WHERE {where}", include_deleted=True)["totalSize"]
    assert len(everything) == count_all == 5 + 151  # file rows 2..6, generated rows 0..150
    expected = [r["Id"] for r in everything if not any(r[flag] is True for flag in hidden)]
    assert count == len(rows) == len(expected)
    assert [r["Id"] for r in rows] == expected
    assert any(r["IsArchived"] for r in everything) and any(r["IsDeleted"] for r in everything[5:])


def test_org_id_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    root = generated_org(
        tmp_path / "o", {"Account": {"count": 1}}, objects=("Account",), extra={"org_id": "00D5g000004NASTYEA"}
    )
    with pytest.raises(FakeOrgError, match=r"wrong 18-char checksum: write '00D5g000004NASTEA4'"):
        load_org(root)
