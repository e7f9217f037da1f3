"""org.json "response_cache": cached REST pages and Bulk results pages are the bytes the fake renders."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from plugin.fakeorg import FakeOrgError, FakeOrgServer, start_fake_org
from tests.fakeorg.genorg import generated_org

SOQL = (
    "SELECT Id, IsDeleted, Name, Parent.Name, BillingStreet, BillingAddress, AnnualRevenue, Description, "
    "CreatedDate, SystemModstamp FROM Account"
)
BULK_SOQL = (
    "SELECT Id, IsDeleted, Name, Parent.Name, BillingStreet, AnnualRevenue, Description, CreatedDate FROM Account"
)
# file rows (tricky text, 18-digit numbers) then generated ones, deleted rows among both
GENERATORS = {"Account": {"count": 40, "seed": 3, "deleted_every": 6}, "Contact": {"count": 10, "seed": 4}}


def _org(root: Path, *, cache: str | None) -> Path:
    extra: dict[str, Any] = {"page_size": 7, "bulk": {"polls_to_complete": 1, "page_size": 9}}
    if cache is not None:
        extra["response_cache"] = cache
    return generated_org(root, GENERATORS, records_from_mini=True, extra=extra)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[FakeOrgServer, FakeOrgServer]]:
    """A fake without the cache and one with it, over the same org."""
    with (
        start_fake_org(_org(tmp_path / "plain", cache=None)) as plain,
        start_fake_org(_org(tmp_path / "cached", cache=str(tmp_path / "pages"))) as cached,
    ):
        yield plain, cached


def _get(fake: FakeOrgServer, path: str, **kwargs: Any) -> requests.Response:
    with fake.client_session() as session:
        headers = {"Authorization": f"Bearer {fake.access_token}", **kwargs.pop("headers", {})}
        response = session.get(f"{fake.instance_url}{path}", headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    return response


def _rest_pages(fake: FakeOrgServer, resource: str, soql: str, version: str = "62.0") -> list[bytes]:
    """Every page of one query, as raw bodies (locators included)."""
    bodies = [_get(fake, f"/services/data/v{version}/{resource}/", params={"q": soql}).content]
    while url := json.loads(bodies[-1]).get("nextRecordsUrl"):
        bodies.append(_get(fake, url).content)
    return bodies


def _bulk_pages(fake: FakeOrgServer, soql: str, **job: str) -> list[tuple[bytes, str, str]]:
    """Every results page of one queryAll job: (body, Sforce-Locator, Sforce-NumberOfRecords)."""
    base = f"{fake.instance_url}/services/data/v62.0/jobs/query"
    headers = {"Authorization": f"Bearer {fake.access_token}"}
    with fake.client_session() as session:
        created = session.post(base, json={"operation": "queryAll", "query": soql, **job}, headers=headers).json()
        deadline = time.monotonic() + 10
        while session.get(f"{base}/{created['id']}", headers=headers).json()["state"] != "JobComplete":
            assert time.monotonic() < deadline, "the job never completed"
    pages: list[tuple[bytes, str, str]] = []
    locator = ""
    while locator != "null":
        params = {"locator": locator} if locator else None
        page = _get(fake, f"/services/data/v62.0/jobs/query/{created['id']}/results", params=params)
        locator = page.headers["Sforce-Locator"]
        pages.append((page.content, locator, page.headers["Sforce-NumberOfRecords"]))
    return pages


def _stats(fake: FakeOrgServer) -> dict[str, Any]:
    stats = fake.snapshot()["response_cache"]
    assert stats is not None
    return dict(stats)


def test_cached_rest_pages_are_the_bytes_the_fake_renders(servers: tuple[FakeOrgServer, FakeOrgServer]) -> None:
    plain, cached = servers
    cases = [("queryAll", SOQL, "62.0"), ("query", SOQL, "62.0"), ("queryAll", SOQL, "61.0")]
    cases.append(("queryAll", f"{SOQL} WHERE AnnualRevenue != null ORDER BY Name DESC", "62.0"))
    first = [_rest_pages(cached, *case) for case in cases]  # rendered and stored
    stored = _stats(cached)
    again = [_rest_pages(cached, *case) for case in cases]  # every page from the cache
    expected = [_rest_pages(plain, *case) for _ in range(2) for case in cases]
    pages = sum(len(p) for p in first)
    assert pages == 9 + 8 + 9 + 8  # 60 rows (52 without the recycle bin) in pages of 7: locators in play
    assert first + again == expected  # byte for byte, nextRecordsUrl locators included
    assert (stored["misses"], stored["hits"]) == (pages, 0)
    assert (_stats(cached)["misses"], _stats(cached)["hits"]) == (pages, pages)
    assert len(list(Path(stored["directory"]).glob("*.body"))) == pages
    assert b'"IsDeleted":true' in b"".join(first[0]) and b'"IsDeleted":true' not in b"".join(first[1])


def test_cached_bulk_pages_are_the_bytes_the_fake_renders(servers: tuple[FakeOrgServer, FakeOrgServer]) -> None:
    plain, cached = servers
    jobs: list[dict[str, str]] = [{}, {"columnDelimiter": "TAB", "lineEnding": "CRLF"}]
    first = [_bulk_pages(cached, BULK_SOQL, **job) for job in jobs]
    again = [_bulk_pages(cached, BULK_SOQL, **job) for job in jobs]
    expected = [_bulk_pages(plain, BULK_SOQL, **job) for _ in range(2) for job in jobs]
    assert first + again == expected  # bodies, locators and record counts
    assert [[n for _, _, n in p] for p in first] == [["9"] * 6 + ["6"]] * 2
    assert first[0][0][0] != first[1][0][0]  # the key holds the delimiter and line ending
    assert (_stats(cached)["misses"], _stats(cached)["hits"]) == (14, 14)


def test_a_page_cut_short_is_not_kept(servers: tuple[FakeOrgServer, FakeOrgServer]) -> None:
    plain, cached = servers
    rule = cached.add_fault(
        {"action": "drop", "path": "/jobs/query/.+/results", "query": "locator=", "after_bytes": 60, "times": 1}
    )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _bulk_pages(cached, BULK_SOQL)
    cached.faults.remove(rule)
    assert _stats(cached)["misses"] == 2  # the first page, then the one that was cut
    assert _bulk_pages(cached, BULK_SOQL) == _bulk_pages(plain, BULK_SOQL)
    assert (_stats(cached)["misses"], _stats(cached)["hits"]) == (2 + 6, 1)  # the cut page was rendered again


def test_the_cache_is_off_by_default_and_its_setting_is_checked(tmp_path: Path) -> None:
    with start_fake_org(_org(tmp_path / "plain", cache=None)) as plain:
        _rest_pages(plain, "queryAll", SOQL)
        assert plain.snapshot()["response_cache"] is None
        assert plain.app.cache is None and plain.app.bulk.cache is None
    with pytest.raises(FakeOrgError, match=r'org.json "response_cache" must be a folder path \(a string\), got True'):
        FakeOrgServer(generated_org(tmp_path / "bad", GENERATORS, extra={"response_cache": True}))


def test_a_changed_org_does_not_read_another_orgs_pages(tmp_path: Path) -> None:
    shared = str(tmp_path / "pages")
    with start_fake_org(_org(tmp_path / "a", cache=shared)) as first:
        _rest_pages(first, "queryAll", SOQL)
        directory = _stats(first)["directory"]
    root = _org(tmp_path / "b", cache=shared)
    settings = json.loads((root / "org.json").read_text(encoding="utf-8"))
    settings["generators"]["Account"]["seed"] = 5
    (root / "org.json").write_text(json.dumps(settings), encoding="utf-8")
    with start_fake_org(root) as second:
        _rest_pages(second, "queryAll", SOQL)
        assert _stats(second)["hits"] == 0 and _stats(second)["directory"] != directory
    with start_fake_org(_org(tmp_path / "c", cache=shared)) as third:  # the same org again
        _rest_pages(third, "queryAll", SOQL)
        assert _stats(third)["misses"] == 0 and _stats(third)["directory"] == directory
