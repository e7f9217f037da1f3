"""The named upcasters: pure functions that turn a payload of schema version n into version n + 1.

Keyed by ``(type, n)`` in ``UPCASTERS``; ``events.codec.decode_data`` chains them on read, so
producers only ever write the current version and stored events are never rewritten. An upcaster
fills a new field only from what the older producer knew, and says "unknown" otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def upcast_job_progress_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """job.progress v2 added ``files_total`` (bodies to fetch); v1 never said it, so it is unknown.

    Not derivable: v1 ``files`` counts bodies fetched, and records whose body turned out to be gone
    (recycle bin, no body) were planned but never counted.
    """
    return {**data, "files_total": None}


def upcast_job_requested_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """job.requested v2 added ``content_versions`` (all | latest). v1 producers exported every
    version of every file (their ContentVersion query had no IsLatest filter): "all"."""
    return {**data, "content_versions": "all"}


def upcast_job_progress_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
    """job.progress v3 added ``object_finished.status``/``reason``/``method``.

    A v2 producer reported an object only once it was exported (it failed the job on any refusal),
    so the status is ``exported``; which API fetched it was never said.
    """
    finished = data.get("object_finished")
    if not isinstance(finished, dict):
        return dict(data)
    return {**data, "object_finished": {**finished, "status": "exported", "reason": None, "method": None}}


UPCASTERS: Mapping[tuple[str, int], Upcaster] = {
    ("job.progress", 1): upcast_job_progress_v1_v2,
    ("job.requested", 1): upcast_job_requested_v1_v2,
    ("job.progress", 2): upcast_job_progress_v2_v3,
}
