"""Status answers made once per state of a job (or of a page), then reused while it is unchanged.

A host polls ``salesforce_backup_status`` over and over while nothing changes, or while only other
jobs change. The answer is a pure function of the job's projected ``JobStatus`` (a frozen, hashable
value), so it is remembered by that value: models, the JSON dump and the readable text are built
once per state, and a poll costs the projection read (itself remembered until the next commit).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from plugin.mcp.results import JobSummary, JobView, StatusResult, next_offset
from projections import JobStatus

# The structured data, the readable text and the data as JSON text.
Prepared = tuple[dict[str, Any], str, str]


def prepare(model: BaseModel, text: str) -> Prepared:
    data = model.model_dump(mode="json")
    return data, text, json.dumps(data, ensure_ascii=False)


def respond(prepared: Prepared) -> CallToolResult:
    """A readable text part first, then the same data as JSON, plus structured content."""
    data, text, data_text = prepared
    return CallToolResult(
        content=[TextContent(type="text", text=text), TextContent(type="text", text=data_text)],
        structured_content=data,
    )


@lru_cache(maxsize=256)
def job_answer(job: JobStatus) -> Prepared:
    result = StatusResult(job=JobView.of(job), total=1, limit=1)
    return prepare(result, result.text())


@lru_cache(maxsize=32)
def page_answer(jobs: tuple[JobStatus, ...], total: int, offset: int, limit: int) -> Prepared:
    result = StatusResult(
        jobs=[JobSummary.of(j) for j in jobs],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=next_offset(offset, len(jobs), total),
    )
    return prepare(result, result.text())
