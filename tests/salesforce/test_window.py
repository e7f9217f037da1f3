"""The incremental window as pure functions: where it starts, what the manifest says, Get Deleted's range."""

from __future__ import annotations

from typing import Any

import pytest

from plugin.salesforce.window import choose_window, deleted_range, manifest_section, parse_instant, uncovered

FULL = {"backup_type": "full", "options": {"objects_filter": [], "include_files": True, "content_versions": "all"}}


def test_the_next_window_starts_at_the_last_end_minus_the_overlap() -> None:
    base = {"job_id": "j1"}
    window = choose_window("incremental", None, base=base, base_window_end="2025-06-01T10:00:30.123Z")
    assert (window.since, window.source, window.overlap_seconds) == ("2025-06-01T09:55:30Z", "last_backup", 300)
    assert window.base_backup == base
    assert choose_window("incremental", "2024-01-31T00:00:00Z").source == "since_date"
    assert choose_window("incremental", None).since is None  # no earlier backup: everything
    assert choose_window("full", None, base=base, base_window_end="2025-06-01T10:00:30Z").since is None
    assert choose_window("files_only", None).since is None
    assert choose_window("files_only", "2024-01-31T00:00:00Z").since == "2024-01-31T00:00:00Z"


def test_the_manifest_window_names_its_end_and_where_the_next_starts() -> None:
    section = manifest_section(choose_window("full", None), backup_type="full", end="2025-06-01T10:00:00.00Z")
    assert section["start"] is None and section["end"] == "2025-06-01T10:00:00.00Z"
    assert section["next_incremental_start"] == "2025-06-01T09:55:00Z"


@pytest.mark.parametrize(
    ("since", "end", "wanted"),
    [
        # seconds dropped, end rounded up: a deletion at 10:07:59 is inside [10:00, 10:08)
        (
            "2025-06-01T10:00:30Z",
            "2025-06-01T10:07:59.500Z",
            ("2025-06-01T10:00:00+00:00", "2025-06-01T10:08:00+00:00"),
        ),
        # too short for Salesforce (more than a minute apart): widened backwards
        ("2025-06-01T10:07:10Z", "2025-06-01T10:07:40Z", ("2025-06-01T10:06:00+00:00", "2025-06-01T10:08:00+00:00")),
    ],
)
def test_get_deleted_covers_the_window_in_whole_minutes(since: str, end: str, wanted: tuple[str, str]) -> None:
    assert deleted_range(since, end) == wanted


def test_salesforce_and_iso_datetimes_parse_to_the_same_instant() -> None:
    assert parse_instant("2024-01-31T12:00:00.000+0000") == parse_instant("2024-01-31T12:00:00Z")
    assert parse_instant("2024-01-31T14:00:00+02:00") == parse_instant("2024-01-31T12:00:00")


@pytest.mark.parametrize(
    ("manifest", "request_filter", "reason"),
    [
        (FULL, (), None),
        ({**FULL, "backup_type": "incremental"}, (), None),
        ({**FULL, "backup_type": "files_only"}, (), "it was a files_only backup"),
        ({**FULL, "options": {"objects_filter": ["Account"]}}, (), "it backed up only Account"),
        ({**FULL, "options": {"objects_filter": ["Account", "Contact"]}}, ("Contact",), None),
        ({**FULL, "options": {"include_files": False}}, (), "it had include_files=false"),
        ({**FULL, "options": {"content_versions": "latest"}}, (), "it kept only the latest file versions"),
        (None, (), "its manifest cannot be read, so what it covered is unknown"),
    ],
)
def test_only_a_backup_that_saw_every_row_asked_for_can_be_a_base(
    manifest: dict[str, Any] | None, request_filter: tuple[str, ...], reason: str | None
) -> None:
    include = {"include_files": True, "include_attachments": True, "include_documents": True}
    assert uncovered(manifest, objects_filter=request_filter, include=include, content_versions="all") == reason
