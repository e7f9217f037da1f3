"""What one backup was asked for: ``ExportOptions``, and the record of them the manifest keeps.

The worker builds the options from the job request and its incremental window; the exporter
only reads them. The manifest's ``options`` section repeats them so a backup says by itself what
it was asked to hold (a ``since_date`` only when the caller gave one, not one a last backup set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugin.salesforce.window import Window


@dataclass(frozen=True)
class ExportOptions:
    job_id: str
    backup_type: str = "full"
    since: str | None = None  # SOQL datetime literal (UTC, ...Z); None = everything
    base_backup: dict[str, Any] | None = None  # the backup an incremental one builds on
    objects_filter: tuple[str, ...] = ()
    include_files: bool = True
    include_attachments: bool = True
    include_documents: bool = True
    compression: bool = False
    parallel_downloads: int = 5
    content_versions: str = "all"  # or "latest": ContentVersion rows (and bodies) with IsLatest only
    window_source: str = "none"  # since_date | last_backup | none (plugin/salesforce/window.py)
    overlap_seconds: int | None = None
    output_directory: str | None = None

    @property
    def window(self) -> Window:
        return Window(self.since, self.window_source, self.base_backup, self.overlap_seconds)

    @property
    def include(self) -> dict[str, bool]:
        return {
            "include_files": self.include_files,
            "include_attachments": self.include_attachments,
            "include_documents": self.include_documents,
        }


def options_section(options: ExportOptions) -> dict[str, Any]:
    """The manifest's ``options``: what the backup was asked for."""
    return {
        "backup_type": options.backup_type,
        "since_date": options.since if options.window_source == "since_date" else None,
        "objects_filter": list(options.objects_filter),
        **options.include,
        "content_versions": options.content_versions,
        "compression": "gzip" if options.compression else None,
        "parallel_downloads": options.parallel_downloads,
        "output_directory": options.output_directory,
    }
