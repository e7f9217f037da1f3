"""An object with 800 fields exports completely: its SELECT does not fit a REST URL, so the field list
is queried in chunks joined by Id (REST), or sent in a Bulk job's body; both give the same bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.sizing import REST_URL_BUDGET, field_chunks, query_url_length
from tests.orgdata import expected_cell
from tests.salesforce.exporting import BULK_ALL, REST_ONLY, csv_digests, csv_rows, export

FIELDS = 800
ROWS = 230
TYPES = ("string", "double", "boolean", "datetime", "textarea", "date", "currency", "picklist")


def _field(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    base = {"name": name, "label": name, "type": kind, "nillable": kind != "boolean", "filterable": True}
    base["sortable"] = kind != "textarea"
    if kind in ("double", "currency"):
        base.update(precision=18, scale=2)
    if kind in ("string", "textarea"):
        base["length"] = 255
    if kind == "picklist":
        base["picklistValues"] = [{"value": v, "active": True} for v in ("Gold", "Silver", "Bronze")]
    return {**base, **extra}


def wide_describe() -> dict[str, Any]:
    fields = [
        _field("Id", "id", nillable=False),
        _field("Name", "string", nillable=False),
        _field("IsDeleted", "boolean"),
        _field("CreatedDate", "datetime", nillable=False),
        _field("SystemModstamp", "datetime", nillable=False),
    ]
    for n in range(FIELDS - len(fields)):
        fields.append(_field(f"Quarterly_Revenue_Forecast_{n:04d}__c", TYPES[n % len(TYPES)]))
    return {"name": "Wide__c", "label": "Wide", "keyPrefix": "a0W", "custom": True, "queryable": True,
            "retrieveable": True, "replicateable": True, "fields": fields}  # fmt: skip


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOrgServer]:
    root = tmp_path_factory.mktemp("wide") / "org"
    (root / "describe").mkdir(parents=True)
    (root / "describe" / "Wide__c.json").write_text(json.dumps(wide_describe()), encoding="utf-8")
    settings = {"org_id": "00D000000000W1D", "generators": {"Wide__c": {"count": ROWS, "seed": 11}}}
    (root / "org.json").write_text(json.dumps(settings), encoding="utf-8")
    with start_fake_org(root, page_size=100) as fake:
        fake.app.bulk.polls_to_complete = 1
        fake.app.bulk.page_size = 90
        yield fake


def test_the_whole_select_is_too_long_for_a_rest_url_and_the_fake_refuses_it(wide: FakeOrgServer) -> None:
    columns = [f["name"] for f in wide_describe()["fields"]]
    soql = f"SELECT {', '.join(columns)} FROM Wide__c"
    base = f"{wide.instance_url}/services/data/v62.0/"
    assert query_url_length(base, soql) > 16_384
    session = requests.Session()
    session.trust_env = False
    try:
        answer = session.get(
            f"{base}queryAll/",
            params={"q": soql},
            headers={"Authorization": f"Bearer {wide.access_token}"},
            verify=str(wide.ca_bundle),
        )
    finally:
        session.close()
    assert answer.status_code == 414 and "URI Too Long" in answer.text
    chunks = field_chunks("Wide__c", columns, base_url=base, budget=REST_URL_BUDGET)
    assert len(chunks) == 3 and all(c[0] == "Id" for c in chunks)  # ~31,000 URL characters in 14,000-long pieces
    ranged = " WHERE Id > 'a0W000000000000' AND Id <= 'a0Wzzzzzzzzzzzz' ORDER BY Id"
    assert all(query_url_length(base, f"SELECT {', '.join(c)} FROM Wide__c{ranged}") <= REST_URL_BUDGET for c in chunks)
    assert [c for chunk in chunks for c in chunk if c != "Id"] == columns[1:]


def test_a_wide_object_exports_every_field_of_every_row_over_rest_and_bulk(wide: FakeOrgServer, tmp_path: Path) -> None:
    wide.reset()
    rest = export(wide, tmp_path / "rest", settings=REST_ONLY)
    bulk = export(wide, tmp_path / "bulk", settings=BULK_ALL)
    entry = rest.manifest["objects"]["Wide__c"]
    assert (entry["method"], entry["field_chunks"], entry["fields"], entry["records"]) == ("rest", 3, FIELDS, ROWS)
    assert bulk.manifest["objects"]["Wide__c"]["method"] == "bulk"
    assert csv_digests(bulk.result.directory) == csv_digests(rest.result.directory)  # type: ignore[union-attr]
    assert not [e for e in wide.request_log if e.status in (414, 431)]
    rows = csv_rows(rest.result.directory / "data" / "Wide__c.csv")  # type: ignore[union-attr]
    header, body = rows[0], rows[1:]
    assert len(header) == FIELDS and len(body) == ROWS
    table = wide.org.table("Wide__c")
    assert table is not None
    types = {f["name"]: f["type"] for f in wide_describe()["fields"]}
    org_rows = {str(table.row(p)["Id"]): table.row(p) for p in range(table.size())}
    for row in body:
        record = org_rows[row[0]]
        assert row == [expected_cell(record.get(c), types[c]) for c in header]
