"""REST or Bulk, field chunks, Id ranges, refusals and the export settings: pure decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.config import ExportSettings, export_settings
from plugin.errors import ConfigError
from plugin.salesforce.errors import SalesforceApiError, SalesforceLimitError, SalesforceNetworkError, stops_job
from plugin.salesforce.idranges import DIGITS, IdRange, id_number, id_text
from plugin.salesforce.plan import FieldPlan
from plugin.salesforce.records import refusal
from plugin.salesforce.sizing import bulk_refusal, choose_method, field_chunks, query_url_length

BASE = "https://acme.my.salesforce.com/services/data/v62.0/"


def plan(name: str, columns: list[str]) -> FieldPlan:
    return FieldPlan(object=name, columns=columns, blob_fields=[])


@pytest.mark.parametrize(
    ("count", "refused", "method"),
    [(50_000, None, "bulk"), (49_999, None, "rest"), (None, None, "rest"), (10**6, "not supported", "rest")],
)
def test_objects_at_the_threshold_go_through_bulk_unless_bulk_cannot_take_them(
    count: int | None, refused: str | None, method: str
) -> None:
    assert choose_method(count, threshold=50_000, bulk_refused=refused) == method


def test_bulk_is_refused_for_unsupported_objects_and_kept_compound_fields() -> None:
    describe = {"fields": [{"name": "Id", "type": "id"}, {"name": "Location__c", "type": "location"}]}
    assert bulk_refusal(plan("Attachment", ["Id"]), describe) == "the Bulk API does not support Attachment"
    assert bulk_refusal(plan("Thing__c", ["Id"]), describe) is None
    reason = bulk_refusal(plan("Thing__c", ["Id", "Location__c"]), describe)
    assert reason is not None and "compound fields (Location__c)" in reason


@given(st.lists(st.from_regex(r"[A-Z][a-z]{2,30}_[a-z]{1,8}__c", fullmatch=True), unique=True, max_size=400))
def test_field_chunks_keep_every_column_once_in_order_with_id_first(names: list[str]) -> None:
    columns = ["Id", "Name", *names]
    chunks = field_chunks("Thing__c", columns, base_url=BASE, budget=3000)
    assert all(chunk[0] == "Id" for chunk in chunks)
    assert [c for chunk in chunks for c in chunk[1:]] == columns[1:]
    ranged = " WHERE Id > '000000000000000' AND Id <= '000000000000000' ORDER BY Id"
    assert all(query_url_length(BASE, f"SELECT {', '.join(c)} FROM Thing__c{ranged}") <= 3000 for c in chunks)
    if len(chunks) > 1:  # not one more chunk than needed: two neighbours never fit together
        merged = ["Id", *chunks[0][1:], *chunks[1][1:]]
        assert query_url_length(BASE, f"SELECT {', '.join(merged)} FROM Thing__c{ranged}") > 3000


def test_a_select_that_fits_is_one_chunk() -> None:
    assert field_chunks("Account", ["Id", "Name"], base_url=BASE, budget=14_000) == [["Id", "Name"]]


IDS = st.text(st.sampled_from(DIGITS), min_size=15, max_size=15)


@given(IDS, IDS)
def test_id_order_is_the_order_of_their_base62_numbers(a: str, b: str) -> None:
    assert (a < b) == (id_number(a) < id_number(b))
    assert id_text(id_number(a)) == a
    assert id_number(a + "AAA") == id_number(a)  # the 18-character form compares on its first 15


@given(st.integers(0, 62**15 - 3), st.integers(2, 10**9))
def test_halves_partition_a_range(after: int, width: int) -> None:
    whole = IdRange(after, min(62**15 - 1, after + width))
    lower, upper = whole.halves()
    assert (lower.after, lower.upto, upper.after, upper.upto) == (whole.after, upper.after, lower.upto, whole.upto)
    assert lower.after < lower.upto < upper.upto


def test_an_id_range_filter_uses_fifteen_character_literals() -> None:
    r = IdRange.covering("001000000000001AAA", "001000000000020AAA")
    assert r.soql_filter() == "Id > '001000000000000' AND Id <= '001000000000020'"
    assert r.from_after("001000000000007AAA").soql_filter() == "Id > '001000000000007' AND Id <= '001000000000020'"


@pytest.mark.parametrize(
    ("code", "message", "skip"),
    [
        ("INVALID_TYPE_FOR_OPERATION", "entity type X does not support query", True),
        ("EXTERNAL_OBJECT_UNSUPPORTED_EXCEPTION", "Where clauses should contain StatType", True),
        ("MALFORMED_QUERY", "Implementation restriction: ContentDocumentLink requires a filter", True),
        ("MALFORMED_QUERY", "FieldDefinition: a filter on a reified column is required [EntityDefinitionId]", True),
        ("MALFORMED_QUERY", "unexpected token: FROM", False),  # our own bad SOQL is a bug, not a skip
        ("INVALID_FIELD", "No such column 'X' on entity 'Account'", False),
    ],
)
def test_only_refusals_of_the_object_itself_are_skips(code: str, message: str, skip: bool) -> None:
    reason = refusal(SalesforceApiError(f"{code}: {message}", code=code))
    assert (reason is not None) == skip
    if reason:
        assert reason == f"Salesforce refuses queries on this object: {code}: {message}"


def test_limits_and_networks_stop_the_job_while_api_errors_do_not() -> None:
    assert stops_job(SalesforceLimitError("x", code="REQUEST_LIMIT_EXCEEDED"))
    assert stops_job(SalesforceNetworkError("x"))
    assert not stops_job(SalesforceApiError("x", code="INVALID_FIELD"))


def test_export_settings_come_from_the_environment_with_production_defaults() -> None:
    assert export_settings({}) == ExportSettings(bulk_threshold=10_000, bulk_poll_timeout=1800.0, api_reserve=0.10)
    env = {"SFBACKUP_BULK_THRESHOLD": "0", "SFBACKUP_BULK_POLL_TIMEOUT": "2.5", "SFBACKUP_API_RESERVE": "25"}
    assert export_settings(env) == ExportSettings(bulk_threshold=0, bulk_poll_timeout=2.5, api_reserve=0.25)


@pytest.mark.parametrize(
    ("name", "value"),
    [("SFBACKUP_BULK_THRESHOLD", "many"), ("SFBACKUP_BULK_THRESHOLD", "1.5"), ("SFBACKUP_API_RESERVE", "95"),
     ("SFBACKUP_BULK_POLL_TIMEOUT", "0"), ("SFBACKUP_API_RESERVE", "nan")],
)  # fmt: skip
def test_bad_export_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{name}={value!r} is not"):
        export_settings({name: value})
