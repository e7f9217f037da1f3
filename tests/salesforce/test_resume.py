"""A stopped export resumes in its .partial folder, fetches only what is missing, and ends identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.fakeorg import start_fake_org
from plugin.salesforce.errors import SalesforceLimitError
from plugin.salesforce.resume import STATE_DIR, FinishedObject, ResumePoint
from tests.fakeorg.genorg import MINI
from tests.salesforce.exporting import Run, csv_digests, export, org_copy


def resume_from(run: Run) -> ResumePoint:
    done = {f["object"]: FinishedObject(f["records"], f["sha256"]) for f in run.finished if f["status"] == "exported"}
    return ResumePoint(attempt=2, finished=done)


def test_a_stop_at_the_api_reserve_resumes_to_the_same_backup_fetching_only_the_rest(tmp_path: Path) -> None:
    with start_fake_org(MINI, page_size=2) as fake:
        before = fake.api_calls
        whole = export(fake, tmp_path / "whole", include_attachments=True)
        whole_calls = fake.api_calls - before

    # The same org, but with little of its daily API limit left: the reserve stops the export.
    # 15 calls over the reserve of 100: setup 3, one Composite request for the four describes, one for
    # the four objects' first pages (firstpages.py), Account's nine more pages of 2 and Attachment's one.
    thin = org_copy(MINI, tmp_path / "thin", limits={"DailyApiRequests": {"Max": 1000, "Remaining": 115}})
    first = Run()
    with start_fake_org(thin, page_size=2) as fake, pytest.raises(SalesforceLimitError, match="Stopped cleanly"):
        export(fake, tmp_path / "b", run=first, include_attachments=True)
    stopped = [f["object"] for f in first.finished]
    assert stopped == ["Account", "Attachment"]  # Contact was under way (its second page) when the reserve was reached
    sidecars = sorted(p.name for p in (tmp_path / "b.partial" / STATE_DIR / "objects").iterdir())
    assert sidecars == ["Account.json", "Attachment.json"]

    with start_fake_org(MINI, page_size=2) as fake:
        before = fake.api_calls
        again = export(fake, tmp_path / "b", resume=resume_from(first), include_attachments=True)
        resumed_calls = fake.api_calls - before
        asked = {e.sobject for e in fake.request_log if "/describe" in e.path or "q=" in e.query_string}
        described = [(e.sobject, e.composite) for e in fake.request_log if e.path.endswith("/describe")]

    assert again.result is not None and whole.result is not None
    assert csv_digests(again.result.directory) == csv_digests(whole.result.directory)
    for name, entry in whole.manifest["objects"].items():
        assert again.manifest["objects"][name]["sha256"] == entry["sha256"], name
    # The resume describes only Contact and Organization: one Composite request, as the whole backup's four.
    assert whole.manifest["api_calls_breakdown"]["describes"] == again.manifest["api_calls_breakdown"]["describes"] == 1
    # setup 3, describes 1, Contact's and Organization's first pages 1, Contact's second page 1, three bodies.
    assert resumed_calls == again.manifest["api_calls"] == 3 + 1 + 1 + 1 + 3
    assert whole_calls == 3 + 1 + 1 + 9 + 1 + 1 + 3  # the same, with Account's and Attachment's pages
    assert asked == {"Organization", "Contact"}  # identity, and the objects still missing
    assert described == [("Contact", True), ("Organization", True)]  # subrequests of one Composite request
    assert not (again.result.directory / STATE_DIR).exists()
    assert sorted(p.name for p in again.result.directory.iterdir()) == ["data", "describe", "files", "manifest.json"]


def test_a_finished_object_whose_csv_changed_is_exported_again(tmp_path: Path) -> None:
    with start_fake_org(MINI, page_size=2) as fake:
        first = Run()
        fake.add_fault(
            {"action": "rate_limit", "after": 14}
        )  # setup 3, describes 1, first pages 1, Account 9 more: Attachment's 2nd page is refused
        with pytest.raises(SalesforceLimitError):
            export(fake, tmp_path / "b", run=first, api_reserve=0)
        assert [f["object"] for f in first.finished] == ["Account"]
        csv = tmp_path / "b.partial" / "data" / "Account.csv"
        csv.write_bytes(csv.read_bytes()[:-3])  # damaged on disk: a truncated tail
        fake.reset()
        again = export(fake, tmp_path / "b", resume=resume_from(first))
        asked = [e.sobject for e in fake.request_log if "/describe" in e.path]
    assert "Account" in asked  # not trusted: fetched again
    entry = again.manifest["objects"]["Account"]
    assert entry["sha256"] == first.finished[0]["sha256"]  # and the fresh copy is what the org holds


def test_the_saved_entry_is_the_manifest_entry(tmp_path: Path) -> None:
    with start_fake_org(MINI, page_size=2) as fake:
        run = Run()
        fake.add_fault(
            {"action": "rate_limit", "after": 14}
        )  # setup 3, describes 1, first pages 1, Account 9 more: Attachment's 2nd page is refused
        with pytest.raises(SalesforceLimitError):
            export(fake, tmp_path / "b", run=run, api_reserve=0)
    saved = json.loads((tmp_path / "b.partial" / STATE_DIR / "objects" / "Account.json").read_text(encoding="utf-8"))
    assert saved["status"] == "exported" and saved["records"] == 20 and saved["method"] == "rest"
    assert saved["sha256"] == run.finished[0]["sha256"]
