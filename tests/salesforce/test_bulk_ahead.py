"""The next object's Bulk job is created while this object's records come (bulkahead.py).

Each scenario runs twice on the same fake org, once one object after another (``ahead=False``) and
once with jobs created ahead: the CSVs, the manifest entries (bulk job ids, fallbacks, per-object
API calls) and the total API calls must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.fakeorg.bulk import BulkJob
from plugin.salesforce.bulkahead import BulkAhead
from plugin.salesforce.csvout import CsvSink
from plugin.salesforce.errors import ExportStoppedError, SalesforceError
from plugin.salesforce.plan import plan_fields
from plugin.salesforce.records_bulk import BulkRecords
from plugin.salesforce.records_rest import soql_for
from plugin.salesforce.resume import FinishedObject, ResumePoint
from tests.fakeorg.genorg import MINI
from tests.salesforce.exporting import BULK_ALL, FAST_RETRY, Run, csv_digests, export, org_copy, session_credentials


@pytest.fixture
def fake() -> Iterator[FakeOrgServer]:
    with start_fake_org(MINI, page_size=7) as server:
        server.app.bulk.page_size = 7
        server.app.bulk.polls_to_complete = 1
        yield server


def jobs(fake: FakeOrgServer) -> list[tuple[str, str]]:
    return [(j["object"], j["state"]) for j in fake.app.bulk.listing()["records"]]


class Both:
    """The sequential run, then the pipelined one (each on a reset org): what each did or raised."""

    def __init__(self, fake: FakeOrgServer, tmp_path: Path, **kwargs: Any) -> None:
        self.runs: list[Run] = []
        self.errors: list[str | None] = []
        self.requests: list[list[tuple[str, str, str]]] = []  # each run's (method, path, query)
        for ahead in (False, True):
            fake.reset()
            run = Run()
            try:
                export(fake, tmp_path / f"ahead-{ahead}", run=run, ahead=ahead, **kwargs)
                self.errors.append(None)
            except SalesforceError as e:
                self.errors.append(f"{type(e).__name__}: {e}")
            self.runs.append(run)
            self.requests.append([(e.method, e.path, e.query_string) for e in fake.request_log])
        self.sequential, self.ahead = self.runs
        self.log = list(fake.request_log)  # the pipelined run's requests


def test_the_next_objects_job_is_created_before_this_objects_records_and_nothing_else_changes(
    fake: FakeOrgServer, tmp_path: Path
) -> None:
    both = Both(fake, tmp_path, settings=BULK_ALL, include_attachments=True)
    sequential, ahead, log = both.sequential, both.ahead, both.log
    assert sequential.result is not None and ahead.result is not None
    assert csv_digests(ahead.result.directory) == csv_digests(sequential.result.directory)
    assert ahead.manifest["objects"] == sequential.manifest["objects"]  # job ids and api_calls included
    assert ahead.manifest["api_calls"] == sequential.manifest["api_calls"]
    assert ahead.manifest["api_calls_breakdown"] == sequential.manifest["api_calls_breakdown"]
    # Contact's job was created when Attachment's REST pages began; Organization's before Contact's results.
    steps = [
        (e.method, e.sobject, "results" if e.path.endswith("/results") else e.path.rsplit("/", 1)[-1]) for e in log
    ]
    contact_post = steps.index(("POST", "Contact", "query"))
    first_attachment_page = next(n for n, e in enumerate(log) if e.sobject == "Attachment" and "q=" in e.query_string)
    assert contact_post < first_attachment_page
    assert steps.index(("POST", "Organization", "query")) < steps.index(("GET", "Contact", "results"))
    assert jobs(fake) == [(o, "JobComplete") for o in ("Account", "Contact", "Organization")]


def test_a_refused_or_failed_job_created_ahead_falls_back_at_its_own_turn_as_before(tmp_path: Path) -> None:
    org = org_copy(MINI, tmp_path / "org", quirks={"not_bulk": ["Contact"]})
    with start_fake_org(org, page_size=7) as fake:
        fake.app.bulk.page_size = 7
        fake.app.bulk.polls_to_complete = 1

        def failed(job: BulkJob) -> None:
            if job.object == "Organization":
                job.outcome, job.error_message = "Failed", "InternalServerError: try again"

        fake.app.bulk.on_create.append(failed)
        both = Both(fake, tmp_path, settings=BULK_ALL)
    sequential, ahead = both.sequential, both.ahead
    assert ahead.result is not None and sequential.result is not None
    entries = ahead.manifest["objects"]
    assert entries == sequential.manifest["objects"]
    assert "is not supported by the Bulk API" in entries["Contact"]["fallbacks"][0]
    assert "ended Failed: InternalServerError: try again" in entries["Organization"]["fallbacks"][0]
    assert entries["Contact"]["method"] == entries["Organization"]["method"] == "rest"
    assert ahead.manifest["api_calls"] == sequential.manifest["api_calls"]
    assert csv_digests(ahead.result.directory) == csv_digests(sequential.result.directory)


@pytest.mark.parametrize("remaining", range(104, 118))
def test_the_api_reserve_reached_at_any_call_stops_where_it_stopped_before(tmp_path: Path, remaining: int) -> None:
    """The reserve (100 of 1,000) is reached after ``remaining - 100`` calls, at every step of the
    export: so near the reserve no job is created ahead (bulkahead.AHEAD_MARGIN), the requests are
    the sequential ones, one for one, and the export stops exactly where it stopped before."""
    limits = {"DailyApiRequests": {"Max": 1000, "Remaining": remaining}}
    with start_fake_org(org_copy(MINI, tmp_path / "org", limits=limits), page_size=7) as fake:
        fake.app.bulk.page_size = 7
        fake.app.bulk.polls_to_complete = 1
        both = Both(fake, tmp_path, settings=BULK_ALL, include_attachments=True)
    records = [[r for r in requests if not r[1].endswith("/Body")] for requests in both.requests]
    assert records[0] == records[1]  # in order (file bodies come in parallel: in any order)
    assert sorted(both.requests[0]) == sorted(both.requests[1])
    assert both.errors[0] == both.errors[1]
    assert remaining > 110 or (both.errors[0] is not None and "Stopped cleanly" in both.errors[0])
    assert both.ahead.finished == both.sequential.finished
    if both.ahead.result is not None and both.sequential.result is not None:
        assert both.ahead.manifest["objects"] == both.sequential.manifest["objects"]


def test_a_bulk_job_limit_met_ahead_falls_back_to_rest_at_its_own_turn_as_before(tmp_path: Path) -> None:
    org = org_copy(MINI, tmp_path / "org", limits={"DailyBulkV2QueryJobs": {"Max": 10, "Remaining": 1}})
    with start_fake_org(org, page_size=7) as fake:
        fake.app.bulk.polls_to_complete = 1
        both = Both(fake, tmp_path, settings=BULK_ALL)
    assert both.errors == [None, None]
    entries = both.ahead.manifest["objects"]
    assert entries == both.sequential.manifest["objects"]
    assert entries["Account"]["method"] == "bulk" and entries["Contact"]["method"] == "rest"
    assert "LIMIT_EXCEEDED: Max number of Bulk API 2.0 query jobs" in entries["Contact"]["fallbacks"][0]


def test_a_cancel_aborts_the_job_created_ahead(fake: FakeOrgServer, tmp_path: Path) -> None:
    def contact_job_exists() -> bool:
        return any(name == "Contact" for name, _ in jobs(fake))

    run = Run()
    with pytest.raises(ExportStoppedError):
        export(fake, tmp_path / "b", run=run, settings=BULK_ALL, should_stop=contact_job_exists)
    assert run.finished == []  # stopped during Account's records, Contact's job created ahead
    assert jobs(fake) == [("Account", "JobComplete"), ("Contact", "Aborted")]
    assert [e.sobject for e in fake.request_log if e.method == "PATCH"] == ["Contact"]


def test_a_resume_creates_no_job_ahead_for_an_object_it_reuses(fake: FakeOrgServer, tmp_path: Path) -> None:
    only = {"objects_filter": ("Account", "Contact")}
    first = Run()
    contact_done = lambda: any(f["object"] == "Contact" for f in first.finished)  # noqa: E731
    with pytest.raises(ExportStoppedError):
        export(fake, tmp_path / "b", run=first, settings=BULK_ALL, should_stop=contact_done, **only)
    contact = next(f for f in first.finished if f["object"] == "Contact")
    fake.reset()
    resume = ResumePoint(attempt=2, finished={"Contact": FinishedObject(contact["records"], contact["sha256"])})
    again = export(fake, tmp_path / "b", settings=BULK_ALL, resume=resume, **only)
    assert again.result is not None and again.manifest["objects"]["Contact"]["sha256"] == contact["sha256"]
    assert jobs(fake) == [("Account", "JobComplete")]
    assert not any(e.sobject == "Contact" and "/jobs/query" in e.path for e in fake.request_log)


def test_a_job_created_long_ago_is_polled_at_once_a_new_one_after_the_first_interval(
    fake: FakeOrgServer, tmp_path: Path
) -> None:
    from plugin.salesforce.client import OrgClient

    client = OrgClient(session_credentials(fake), api_version="62.0", extra_ca=Path(fake.ca_bundle), retry=FAST_RETRY)
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    try:
        describe = client.describe_many(["Contact"])["Contact"]
        assert not isinstance(describe, SalesforceError)
        columns = plan_fields(describe.data).columns
        soql = soql_for("Contact", columns)
        pending = BulkAhead(client, lambda name: ("Contact", soql) if name == "Account" else None, clock=lambda: now[0])
        pending.prepare_after("Account")
        now[0] += 30.0  # Account's records took 30 s meanwhile

        def records(ahead: BulkAhead | None, name: str) -> int:
            sink = CsvSink(tmp_path / f"{name}.csv", columns)
            result = BulkRecords(
                client, "Contact", columns, describe.data, sink, spool=tmp_path / f".{name}", poll_timeout=60.0,
                on_rows=lambda rows: None, ahead=ahead, clock=lambda: now[0], sleep=sleep,
            ).export()  # fmt: skip
            sink.close()
            return result.polls

        assert records(pending, "ahead") == 1 and slept == []  # polled at once: due 29.95 s ago
        assert pending.pending is None and pending.handed == {"Contact": 1}
        assert records(None, "fresh") == 1 and slept == [0.05]
    finally:
        client.close()
