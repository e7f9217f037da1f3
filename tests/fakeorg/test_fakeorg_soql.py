from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugin.fakeorg import ApiError, FakeOrg, load_org, sf_id
from plugin.fakeorg.query import project, run_query
from plugin.fakeorg.soql import parse

MINI = Path(__file__).parent / "orgs" / "mini"


@pytest.fixture(scope="module")
def org() -> FakeOrg:
    return load_org(MINI)


def ids(org: FakeOrg, soql: str, *, include_deleted: bool = False) -> list[str]:
    result = run_query(org, soql, include_deleted=include_deleted)
    return [str(r["Id"]) for r in result.rows]


def rows(org: FakeOrg, soql: str) -> list[dict[str, Any]]:
    result = run_query(org, soql, include_deleted=False)
    return [project(org, result, r, "62.0") for r in result.rows]


def error_of(org: FakeOrg, soql: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        run_query(org, soql, include_deleted=False)
    return info.value


def acc(*numbers: int) -> list[str]:
    return [sf_id("001", n) for n in numbers]


def test_parse_keeps_select_order_and_clauses() -> None:
    query = parse(
        "select Id, account.Name from Contact where (A = 1 or B != 'x') and not C in (1, 2) "
        "order by Name desc nulls last limit 5 offset 2"
    )
    assert [f.text for f in query.fields] == ["Id", "account.Name"]
    assert query.sobject == "Contact" and query.limit == 5 and query.offset == 2
    assert query.order_by[0].descending and query.order_by[0].nulls_last


def test_field_names_are_case_insensitive_and_answered_in_describe_casing(org: FakeOrg) -> None:
    record = rows(org, "SELECT ID, name, PARENT.NAME FROM account WHERE id = '001000000000002AAA'")[0]
    assert list(record) == ["attributes", "Id", "Name", "Parent"]
    assert record["Parent"] == {
        "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001000000000001AAA"},
        "Name": "Account 01",
    }


def test_query_hides_deleted_rows_and_query_all_shows_them(org: FakeOrg) -> None:
    assert sf_id("001", 13) not in ids(org, "SELECT Id FROM Account")
    assert sf_id("001", 13) in ids(org, "SELECT Id FROM Account", include_deleted=True)
    assert len(ids(org, "SELECT Id FROM Account", include_deleted=True)) == 20


def test_datetimes_compare_as_instants_across_offsets(org: FakeOrg) -> None:
    same = ids(org, "SELECT Id FROM Account WHERE CreatedDate = 2024-01-05T12:30:00+02:00")
    assert same == acc(5)
    assert ids(org, "SELECT Id FROM Account WHERE CreatedDate >= 2024-01-19T10:30:00.000Z") == acc(19, 20)
    assert ids(org, "SELECT Id FROM Account WHERE CreatedDate < 2024-01-02T00:00:00Z") == acc(1)


def test_numbers_compare_as_decimals_not_text(org: FakeOrg) -> None:
    big = ids(org, "SELECT Id FROM Account WHERE AnnualRevenue > 99999")
    assert big == acc(4, 7, 12, 16, 19)  # 1e5, 12345678901234567890.123456789, 123456789012345678
    zeros = ids(org, "SELECT Id FROM Account WHERE AnnualRevenue = 0")
    assert zeros == acc(3, 6, 8, 15, 18, 20)  # -0, -0.0, 0


def test_in_not_in_like_and_null(org: FakeOrg) -> None:
    assert ids(org, "SELECT Id FROM Account WHERE Name IN ('account 02', 'Account 03')") == acc(2, 3)
    assert len(ids(org, "SELECT Id FROM Account WHERE Name NOT IN ('Account 02')")) == 18
    assert ids(org, "SELECT Id FROM Account WHERE Name LIKE 'zoë%'") == acc(7)
    assert ids(org, "SELECT Id FROM Account WHERE NOT Name LIKE 'Account%'") == acc(7)
    assert ids(org, "SELECT Id FROM Account WHERE ParentId != null") == acc(2, 3, 4)
    assert ids(org, "SELECT Id FROM Contact WHERE AccountId = null") == [sf_id("003", 3)]


def test_booleans_and_relationship_filters(org: FakeOrg) -> None:
    assert ids(org, "SELECT Id FROM Contact WHERE IsEmailBounced = TRUE") == [sf_id("003", 2)]
    assert ids(org, "SELECT Id FROM Contact WHERE Account.Name = 'Account 01'") == [sf_id("003", 1)]


def test_order_by_limit_offset(org: FakeOrg) -> None:
    ordered = ids(org, "SELECT Id FROM Account WHERE Name LIKE 'Account 0_' ORDER BY Name DESC LIMIT 3 OFFSET 1")
    assert ordered == acc(8, 6, 5)
    by_number = ids(org, "SELECT Id FROM Account ORDER BY AnnualRevenue DESC NULLS LAST LIMIT 2")
    assert by_number == acc(7, 19)  # equal keys keep file order


def test_count_query(org: FakeOrg) -> None:
    result = run_query(org, "SELECT COUNT() FROM Account WHERE Type = 'Prospect'", include_deleted=False)
    assert result.is_count and result.total_size == 6  # 7 prospects, one deleted


def test_unknown_object_is_invalid_type_with_caret_line(org: FakeOrg) -> None:
    error = error_of(org, "SELECT Id FROM XYZZY")
    assert error.error_code == "INVALID_TYPE" and error.status == 400
    assert error.message.startswith("\nSELECT Id FROM XYZZY\n               ^\nERROR at Row:1:Column:16\n")
    assert "sObject type 'XYZZY' is not supported." in error.message


def test_unknown_field_and_relationship_are_invalid_field(org: FakeOrg) -> None:
    error = error_of(org, "SELECT Id, Foo FROM Account")
    assert error.error_code == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Account'." in error.message
    assert "Didn't understand relationship 'Nope'" in error_of(org, "SELECT Nope.Name FROM Account").message


def test_literal_of_the_wrong_type_is_invalid_field(org: FakeOrg) -> None:
    error = error_of(org, "SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'")
    assert error.error_code == "INVALID_FIELD"
    assert "must be of type dateTime and should not be enclosed in quotes" in error.message


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account LIMIT x",
        "SELECT Id, Id FROM Account",
        "SELECT Id FROM Account WHERE Name = 'open",
    ],
)
def test_syntax_errors_are_malformed_query(org: FakeOrg, soql: str) -> None:
    assert error_of(org, soql).error_code == "MALFORMED_QUERY"


def test_id_ranges_order_by_id_and_limit(org: FakeOrg) -> None:
    window = "Id > '001000000000004AAA' AND Id <= '001000000000009'"
    assert ids(org, f"SELECT Id FROM Account WHERE {window}") == acc(5, 6, 7, 8, 9)
    assert ids(org, f"SELECT Id FROM Account WHERE {window} ORDER BY Id DESC LIMIT 2") == acc(9, 8)
    assert ids(org, "SELECT Id FROM Account WHERE Id >= '001000000000012AAA' ORDER BY Id LIMIT 3") == acc(12, 14, 15)
    result = run_query(org, f"SELECT COUNT() FROM Account WHERE {window} OR Name = 'Account 01'", include_deleted=False)
    assert result.total_size == 6


def test_incremental_filters_on_audit_datetimes(org: FakeOrg) -> None:
    assert ids(org, "SELECT Id FROM Account WHERE SystemModstamp > 2024-02-18T23:59:59.000+0000") == acc(19, 20)
    assert ids(org, "SELECT Id FROM Account WHERE SystemModstamp >= 2024-02-19T00:59:59+01:00") == acc(18, 19, 20)
    deleted = ids(
        org,
        "SELECT Id FROM Account WHERE IsDeleted = true AND SystemModstamp < 2024-03-01T00:00:00Z",
        include_deleted=True,
    )
    assert deleted == acc(13)


def test_invalid_id_literal_is_a_filter_operator_error(org: FakeOrg) -> None:
    error = error_of(org, "SELECT Id FROM Account WHERE Id > '001xyz'")
    assert (error.status, error.error_code) == (400, "INVALID_QUERY_FILTER_OPERATOR")
    assert error.message == (
        "\nSELECT Id FROM Account WHERE Id > '001xyz'\n                                  ^\nERROR at Row:1:Column:35\n"
        "invalid ID field: 001xyz"
    )
    assert (
        error_of(org, "SELECT Id FROM Contact WHERE AccountId IN ('nope')").error_code
        == "INVALID_QUERY_FILTER_OPERATOR"
    )


def test_unfilterable_and_unsortable_fields_are_invalid_field(org: FakeOrg) -> None:
    filtered = error_of(org, "SELECT Id FROM Account WHERE Description = 'x'")
    assert filtered.error_code == "INVALID_FIELD"
    assert filtered.message.endswith("ERROR at Row:1:Column:30\nfield 'Description' can not be filtered in query call")
    sorted_ = error_of(org, "SELECT Id FROM Account ORDER BY BillingAddress")
    assert sorted_.message.endswith(
        "ERROR at Row:1:Column:33\nfield 'BillingAddress' can not be sorted in a query call"
    )


def test_invalid_field_message_is_exact(org: FakeOrg) -> None:
    error = error_of(org, "SELECT Id, Account.Nope FROM Contact")
    assert error.message == (
        "\nSELECT Id, Account.Nope FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nope' on "
        "entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom "
        "field name. Please reference your WSDL or the describe call for the appropriate names."
    )


def test_lazy_rows_page_from_checkpoints(org: FakeOrg) -> None:
    result = run_query(org, "SELECT Id FROM Account WHERE Name LIKE 'Account%'", include_deleted=False)
    rows = result.rows
    assert [r["Id"] for r in rows[3:6]] == acc(4, 5, 6)
    assert [r["Id"] for r in rows[3:6]] == acc(4, 5, 6)  # read again from its checkpoint
    assert len(rows) == 18 and rows[-1]["Id"] == sf_id("001", 20)
    with pytest.raises(IndexError):
        rows[18]
