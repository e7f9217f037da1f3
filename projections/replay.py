"""Replay a recorded stream file into the projection it gives (golden files, `sfbackup replay`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from events.streamfile import read_lines
from projections.catalog import BackupEntry, project
from projections.job_status import JobStatus


def replay(lines: Iterable[str]) -> dict[str, Any]:
    """Return ``{"jobs": {job_id: status dict}, "catalog": [entry dicts, oldest first]}``.

    Lines are folded in file order, which for a recorded stream is position order.
    """
    jobs: dict[str, JobStatus] = {}
    catalog: dict[str, BackupEntry] = {}
    project(read_lines(lines), jobs=jobs, catalog=catalog)
    return {
        "jobs": {job_id: jobs[job_id].to_dict() for job_id in sorted(jobs)},
        "catalog": [entry.to_dict() for entry in sorted(catalog.values(), key=lambda e: e.position)],
    }


def render(projection: dict[str, Any]) -> str:
    """The byte-for-byte text of a golden ``.expected.json`` file."""
    return json.dumps(projection, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
