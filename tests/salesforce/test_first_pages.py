"""Small objects' first query pages ride along, five to a Composite request (firstpages.py): the same
backup, value for value, for fewer API calls; refusals and transient errors as the direct query has them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import ExportFailedError, SalesforceLimitError
from plugin.salesforce.firstpages import FRESH_FOR, FirstPages
from plugin.salesforce.manifest import read_manifest
from tests.salesforce.exporting import DEMO, FAST_RETRY, NO_FILES, REPO, REST_ONLY, export, session_credentials

REFUSALS = REPO / "fixtures" / "orgs" / "refusals"
V = "/services/data/v62.0"
NO_COMPOSITE = {"action": "respond", "error_code": "NOT_FOUND", "path": "/composite$"}


def composite_queries(fake: FakeOrgServer) -> list[list[str]]:
    """Per composite request of queries, the objects whose query it carried (logged just before it)."""
    carried: list[list[str]] = []
    subs: list[str] = []
    for entry in fake.request_log:
        if entry.composite:
            subs.append(entry.sobject if entry.path.rstrip("/").endswith("/queryAll") else "")
        elif entry.path == f"{V}/composite":
            if subs and all(subs):
                carried.append(subs)
            subs = []
    return carried


def entries(manifest: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        n: (e["status"], e.get("records"), e.get("sha256"), e.get("reason")) for n, e in manifest["objects"].items()
    }


@pytest.mark.parametrize("org", [DEMO, REFUSALS], ids=["demo", "refusals"])
def test_the_backup_is_the_one_each_object_querying_alone_makes_for_fewer_calls(org: Path, tmp_path: Path) -> None:
    with start_fake_org(org, page_size=250) as fake:
        along = export(fake, tmp_path / "along", settings=REST_ONLY, **NO_FILES)
        calls_along = fake.api_calls
        carried = composite_queries(fake)
    with start_fake_org(org, page_size=250) as fake:
        fake.add_fault(NO_COMPOSITE)  # an org without the Composite API: every query goes alone
        alone = export(fake, tmp_path / "alone", settings=REST_ONLY, **NO_FILES)
        calls_alone = fake.api_calls
        described = sum(1 for e in fake.request_log if e.path.endswith("/describe"))
    assert entries(along.manifest) == entries(alone.manifest)  # same rows, same bytes, same skips and reasons
    rode = [name for group in carried for name in group]
    assert carried and all(2 <= len(group) <= 5 for group in carried) and len(rode) == len(set(rode))
    # Each composite request carried len(group) first pages for one call, where alone they cost len(group),
    # and the describes went one per object without the Composite API.
    saved_queries = sum(len(group) - 1 for group in carried)
    assert calls_alone - calls_along == saved_queries + described - 1
    assert along.manifest["api_calls"] == calls_along


def test_a_refused_object_that_rode_along_is_skipped_with_its_reason_without_a_query_of_its_own(
    tmp_path: Path,
) -> None:
    with start_fake_org(REFUSALS, page_size=250) as fake:
        run = export(fake, tmp_path / "b", settings=REST_ONLY, **NO_FILES)
        direct = {e.sobject for e in fake.request_log if not e.composite and "queryAll" in e.path}
        carried = {name for group in composite_queries(fake) for name in group}
    skipped = {n: e["reason"] for n, e in run.manifest["objects"].items() if e["status"] == "skipped"}
    assert set(skipped) == {"Legacy__c", "acme__Gated__c"}
    assert "does not support query" in skipped["Legacy__c"] and "requires a filter" in skipped["acme__Gated__c"]
    assert set(skipped) <= carried and not set(skipped) & direct  # the subresponse's error, not a second query


def test_a_ride_along_query_that_met_a_transient_error_is_sent_again_alone(tmp_path: Path) -> None:
    with start_fake_org(DEMO, page_size=250) as fake:
        clean = export(fake, tmp_path / "clean", settings=REST_ONLY, **NO_FILES)
    with start_fake_org(DEMO, page_size=250) as fake:
        fake.add_fault(
            {"action": "respond", "error_code": "SERVER_UNAVAILABLE", "sobject": "Case", "path": "queryAll", "times": 1}
        )
        run = export(fake, tmp_path / "b", settings=REST_ONLY, **NO_FILES)
        asked = [(e.composite, e.status) for e in fake.request_log if e.sobject == "Case" and "queryAll" in e.path]
    assert asked == [(True, 503), (False, 200)]  # in Account's composite request, then on its own
    assert entries(run.manifest) == entries(clean.manifest)


def test_a_waiting_page_with_more_to_follow_is_fetched_again_once_its_cursor_may_have_expired(
    tmp_path: Path,
) -> None:
    now = [0.0]
    with start_fake_org(DEMO, page_size=250) as fake:
        client = OrgClient(session_credentials(fake), api_version="62.0", extra_ca=fake.ca_bundle, retry=FAST_RETRY)
        try:
            queries = {name: f"SELECT Id FROM {name}" for name in ("Account", "Contact", "Organization")}
            pages = FirstPages(
                client, lambda name: [(n, q) for n, q in queries.items() if n != name], clock=lambda: now[0]
            )
            first = pages.take("Account", queries["Account"])
            assert first is not None and len(first["records"]) == 250 and fake.api_calls == 1
            now[0] = FRESH_FOR + 1
            assert pages.take("Organization", queries["Organization"]) is not None  # one page: nothing to expire
            assert pages.take("Contact", queries["Contact"]) is None  # 1,200 rows: its cursor may be gone
            assert pages.take("Contact", queries["Contact"]) is None  # handed out (or not) once
            assert (pages.composites, pages.served, fake.api_calls) == (1, 2, 1)
            assert pages.take("Account", "SELECT Id, Name FROM Account") is None  # only for the very SOQL sent
        finally:
            client.close()


@pytest.mark.parametrize("composite", [True, False], ids=["rode-along", "alone"])
def test_a_query_page_that_is_not_json_fails_its_object_the_same_way_whether_it_rode_along_or_not(
    composite: bool, tmp_path: Path
) -> None:
    """A 200 whose body is an HTML page (a proxy's, a login form's): the object fails, the others are exported."""
    html = {"action": "respond", "status": 200, "body": "<html>Sign in</html>", "content_type": "text/html"}
    with start_fake_org(DEMO, page_size=250) as fake:
        if not composite:
            fake.add_fault(NO_COMPOSITE)
        fake.add_fault({**html, "sobject": "Case", "path": "queryAll", "times": 1})
        with pytest.raises(ExportFailedError) as caught:
            export(fake, tmp_path / "b", settings=REST_ONLY, **NO_FILES)
        asked = [e.composite for e in fake.request_log if e.sobject == "Case" and "queryAll" in e.path]
    assert asked == [composite]  # the page came in Account's composite request, or alone
    assert caught.value.code == "OBJECTS_FAILED"
    manifest = read_manifest(tmp_path / "b.partial")
    assert manifest is not None and manifest["errors"] == [
        {"object": "Case", "code": "SALESFORCE_ERROR", "message": "A query page has no records list."}
    ]
    assert {n for n, e in manifest["objects"].items() if e["status"] == "exported"} == {
        "Account", "Contact", "Custom__c", "Lead", "Opportunity", "Organization"
    }  # fmt: skip


def test_the_api_limit_at_the_composite_request_stops_the_job_at_once(tmp_path: Path) -> None:
    """A refusal that would stop the job anyway (the limit, the session, the network) is raised at the
    turn of the object that sent the composite, without one more request bound to be refused."""
    with start_fake_org(DEMO, page_size=250) as fake:
        fake.add_fault({"action": "rate_limit", "after": 4})  # setup 3, describes 1: the first pages are refused
        with pytest.raises(SalesforceLimitError, match="REQUEST_LIMIT_EXCEEDED"):
            export(fake, tmp_path / "b", settings=REST_ONLY, api_reserve=0, **NO_FILES)
        after = [e.path for e in fake.request_log if not e.composite][4:]
    assert after == [f"{V}/composite"]  # the refused composite request, and nothing after it
