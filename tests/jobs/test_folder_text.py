"""What status says of a job's folder is what is on disk now, not only the path it was given."""

from __future__ import annotations

from pathlib import Path

from plugin.jobs.state import folder_text
from plugin.mcp.results import JobView


def test_the_folder_is_the_backup_its_partial_or_the_path_saying_why_nothing_is_there(tmp_path: Path) -> None:
    final = tmp_path / "20261204T000000Z-job"
    assert folder_text(str(final), status="requested", cleaned=False) == f"{final} (not created yet)"
    partial = final.with_name(final.name + ".partial")
    partial.mkdir()
    assert folder_text(str(final), status="running", cleaned=False) == str(partial)
    partial.rename(final)
    assert folder_text(str(final), status="completed", cleaned=False) == str(final)
    final.rmdir()
    assert folder_text(str(final), status="cancelled", cleaned=True) == f"{final} (removed by cleanup)"
    assert folder_text(str(final), status="failed", cleaned=False) == f"{final} (not on disk)"


def test_the_status_text_of_a_cancelled_and_cleaned_job_says_its_folder_went(tmp_path: Path) -> None:
    folder = str(tmp_path / "gone")
    view = JobView(
        job_id="j1", status="cancelled", backup_directory=folder, cleaned=True, resource_uri="backup://jobs/j1"
    )
    assert f"; folder {folder} (removed by cleanup)" in view.text()
    assert view.backup_directory == folder  # the structured answer keeps the path the job was given
