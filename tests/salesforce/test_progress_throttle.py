"""A backup of a million records writes at most a few thousand progress events.

The exporter runs against a simulated org (no network: describes, record counts and query pages
come from memory)
with a fake clock that advances per record, as a real org paging 2,000 records a second would.
Every progress report becomes one ``job.progress`` event (``JobWorker.on_progress``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from plugin.config import ExportSettings
from plugin.salesforce.client import RawBody
from plugin.salesforce.export import Exporter
from plugin.salesforce.identity import OrgIdentity
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.progress import PROGRESS_INTERVAL, Progress

SECONDS_PER_RECORD = 0.0005  # 2,000 records a second
PAGE = 2000


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class SimulatedOrg:
    """What the exporter asks of an ``OrgClient``, answered from memory; each record costs fake time."""

    api_version = "62.0"
    base_url = "https://simulated.my.salesforce.com/services/data/v62.0/"
    composite_refused = "simulated: every query goes alone"  # no first pages fetched ahead (firstpages.py)

    def __init__(self, records: dict[str, int], clock: FakeClock, seconds_per_record: float) -> None:
        self.records = records
        self.clock = clock
        self.step = seconds_per_record
        self.api_calls = 0

    def _body(self, data: dict[str, Any]) -> RawBody:
        self.api_calls += 1
        return RawBody(json.dumps(data).encode("utf-8"), data)

    def describe_global(self) -> RawBody:
        return self._body({"sobjects": [{"name": name, "queryable": True} for name in self.records]})

    def describe_many(self, names: list[str]) -> dict[str, RawBody]:
        """One API call for up to 25 describes, as a Composite request is."""
        assert len(names) <= 25
        self.api_calls += 1
        return {name: RawBody(b"{}", {"name": name, "fields": [{"name": "Id", "type": "id"}]}) for name in names}

    base_url = "https://sim.example/services/data/v62.0/"

    def record_counts(self, names: list[str]) -> dict[str, int]:
        self.api_calls += 1
        return {name: self.records[name] for name in names}

    def query_page(
        self, *, soql: str | None = None, next_url: str | None = None, object_name: str, **_: Any
    ) -> dict[str, Any]:
        """Pages of 2,000 as Salesforce sends them; the clock moves as each record is read."""
        self.api_calls += 1
        start = 0 if next_url is None else int(next_url.rsplit("-", 1)[1])
        stop = min(start + PAGE, self.records[object_name])
        page: dict[str, Any] = {
            "totalSize": str(self.records[object_name]),
            "done": stop >= self.records[object_name],
            "records": TimedRecords(self.clock, self.step, (f"{object_name[:3]}{i:015d}" for i in range(start, stop))),
        }
        if not page["done"]:
            page["nextRecordsUrl"] = f"/services/data/v62.0/query/01gSIM-{stop}"
        return page


class TimedRecords(list[dict[str, Any]]):
    """A page's records; iterating one costs its share of fake time, as reading it off the wire does."""

    def __init__(self, clock: FakeClock, step: float, ids: Iterator[str]) -> None:
        super().__init__({"Id": i} for i in ids)
        self.clock = clock
        self.step = step

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in super().__iter__():
            self.clock.now += self.step
            yield record


def run(
    tmp_path: Path, records: dict[str, int], seconds_per_record: float = SECONDS_PER_RECORD
) -> tuple[list[tuple[float, Progress]], FakeClock, Any]:
    clock = FakeClock()
    reports: list[tuple[float, Progress]] = []
    exporter = Exporter(
        SimulatedOrg(records, clock, seconds_per_record),  # type: ignore[arg-type]
        OrgIdentity("00D000000000001", "Sim", "https://sim.example"),
        ExportOptions(job_id="sim", backup_type="full"),
        tmp_path / "backup",
        on_plan=lambda selection: None,
        on_progress=lambda progress: reports.append((clock.now, progress)),
        log_head=lambda: (0, "00" * 32),
        clock=clock,
        # Every object over REST pages: this test is about progress, not the Bulk path.
        settings=ExportSettings(bulk_threshold=10**9),
    )
    result = exporter.run()
    return reports, clock, result


def test_a_million_records_give_one_report_per_second_and_two_per_object(tmp_path: Path) -> None:
    records = {"Account": 400_000, "Contact": 350_000, "Opportunity": 200_000, "Task": 50_000, "Case": 0}
    reports, _, result = run(tmp_path, records)
    assert result.records == 1_000_000
    seconds = sum(records.values()) * SECONDS_PER_RECORD  # 500 s of paging
    forced = 2 * len(records) + 1  # started and finished per object, then the manifest
    assert len(reports) <= forced + math.ceil(seconds / PROGRESS_INTERVAL)
    assert len(reports) >= seconds / PROGRESS_INTERVAL - len(records)  # "about once a second", not fewer
    assert len(reports) < 3_000
    finished = [p.object_finished["object"] for _, p in reports if p.object_finished]
    assert finished == sorted(records)
    # Within an object, reports are at least one interval apart (the first one is its start).
    gaps = [
        b[0] - a[0]
        for a, b in pairwise(reports)
        if b[1].current_object is not None and a[1].current_object == b[1].current_object
    ]
    assert len(gaps) > 400
    assert min(gaps) >= PROGRESS_INTERVAL


def test_the_count_does_not_grow_with_records_when_time_does_not(tmp_path: Path) -> None:
    """However many records arrive within one interval, they add no report."""
    reports, _, result = run(tmp_path, {"Account": 100_000, "Contact": 100_000}, seconds_per_record=0.0)
    assert result.records == 200_000
    assert len(reports) == 2 * 2 + 1
