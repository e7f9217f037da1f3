"""The manifest entry of an exported object says how it was fetched and whether it came up short."""

from __future__ import annotations

from pathlib import Path

from plugin.config import ExportSettings
from plugin.salesforce.plan import FieldPlan
from plugin.salesforce.records import RecordsOutcome
from plugin.salesforce.records_export import ObjectExporter


def entry_for(outcome: RecordsOutcome, tmp_path: Path) -> dict[str, object]:
    exporter = ObjectExporter(
        None,  # type: ignore[arg-type]  # the entry needs no connection
        "Thing__c",
        tmp_path,
        settings=ExportSettings(),
        record_count=7,
        compress=False,
        since=None,
        on_rows=lambda n: None,
        describes=None,  # type: ignore[arg-type]  # nor a describe
    )
    plan = FieldPlan(object="Thing__c", columns=["Id", "Name"], blob_fields=[])
    return exporter._entry(plan, outcome, 3)


def test_fewer_rows_than_salesforce_announced_is_a_warning_in_the_entry(tmp_path: Path) -> None:
    outcome = RecordsOutcome("rest", 5, 1, "ab" * 32, 120, tmp_path / "data" / "Thing__c.csv", 8, "totalSize")
    entry = entry_for(outcome, tmp_path)
    assert entry["warning"] == "the CSV holds 5 rows, 3 fewer than Salesforce announced (totalSize = 8)"
    assert (entry["records"], entry["deleted_records"], entry["record_count"], entry["api_calls"]) == (5, 1, 7, 3)
    assert (entry["method"], entry["query"], entry["file"]) == ("rest", "queryAll", "data/Thing__c.csv")


def test_a_complete_bulk_export_has_no_warning_and_names_its_job(tmp_path: Path) -> None:
    outcome = RecordsOutcome(
        "bulk", 8, 0, "cd" * 32, 99, tmp_path / "data" / "Thing__c.csv", 8, "numberRecordsProcessed", bulk_job="750x"
    )
    entry = entry_for(outcome, tmp_path)
    assert "warning" not in entry and entry["bulk_job"] == "750x" and "fallbacks" not in entry
