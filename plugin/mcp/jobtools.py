"""The job-control tools: cancel, resume, and the audit trail with its hash-chain check."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from plugin.mcp.results import (
    CancelResult,
    ChainView,
    EventsResult,
    EventView,
    JobView,
    StartResult,
    StatusResult,
    job_uri,
)
from plugin.mcp.tools import MAX_OFFSET, READ, START, JobId, answer, tool_errors, wait_for_job

if TYPE_CHECKING:
    from plugin.mcp.mount import BackupPlugin

MAX_EVENTS = 200
CANCEL_WAIT = 5.0  # the cancel answer waits this long for the worker to confirm it stopped

CANCEL = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def add_job_tools(server: MCPServer, plugin: BackupPlugin) -> None:
    """Add ``salesforce_backup_cancel``, ``salesforce_backup_resume`` and ``salesforce_backup_events``."""
    holder = plugin.runtime

    async def cancel(
        ctx: Context,
        job_id: JobId,
        reason: Annotated[str | None, Field(max_length=500, description="Why (kept in the audit trail)")] = None,
    ) -> Annotated[CallToolResult, CancelResult]:
        """Cancel a running or queued backup job: it records job.cancel_requested, the worker stops
        within about a second and records job.cancelled; the partial backup folder is removed later.

        Cancelling a job that already ended is an error; cancelling twice changes nothing.
        """
        wanted = job_id.strip()

        def request() -> StatusResult:
            with tool_errors("salesforce_backup_cancel"):
                job = holder.get().cancel(
                    wanted, reason=reason, actor="mcp", correlation_id=f"mcp:{plugin.run_id}:{ctx.request_id}"
                )
                return StatusResult(job=JobView.of(job), total=1, limit=1)

        def read() -> StatusResult:
            with tool_errors("salesforce_backup_cancel"):
                return StatusResult(job=JobView.of(holder.get().job(wanted)), total=1, limit=1)

        first = await anyio.to_thread.run_sync(request)
        assert first.job is not None
        view = first.job
        if view.status != "cancelled":
            waited = await wait_for_job(plugin, ctx, wanted, CANCEL_WAIT, read)
            assert waited.job is not None
            view = waited.job
        if view.status == "cancelled":
            message = f"Job {wanted} is cancelled."
        elif view.status in ("completed", "failed"):
            message = f"Job {wanted} {view.status} before the cancel took effect."
        else:
            grace = holder.get().settings.cancel_grace
            message = (
                f"Cancel of job {wanted} requested; the worker has not confirmed yet. It is stopped by force "
                f"{grace:g} s after the request (SFBACKUP_CANCEL_GRACE) if it does not stop by itself."
            )
        result = CancelResult(job=view, message=message)
        return answer(result, result.text())

    def resume(job_id: JobId) -> Annotated[CallToolResult, StartResult]:
        """Resume an interrupted backup job (its worker was lost: crash, reboot, kill) or one that failed
        with a retryable error (an API limit, the network): a new worker starts the next attempt of the
        same job in the same backup folder, fetching only what earlier attempts did not finish."""
        with tool_errors("salesforce_backup_resume"):
            job = holder.get().resume(job_id.strip())
        result = StartResult(
            job_id=job.job_id,
            status=job.status,
            backup_directory=job.backup_directory or "",
            resource_uri=job_uri(job.job_id),
            message=(
                f"Job {job.job_id} resumes as attempt {job.attempt + 1}, writing to {job.backup_directory}. "
                f'Check it with salesforce_backup_status(job_id="{job.job_id}").'
            ),
        )
        return answer(result, result.text())

    def events(
        job_id: Annotated[JobId | None, Field(description="Only this job's events; omit for every job")] = None,
        after: Annotated[
            int, Field(ge=0, le=MAX_OFFSET, description="Only events after this position (next_after of a page)")
        ] = 0,
        limit: Annotated[int, Field(ge=1, le=MAX_EVENTS, description=f"Events per page, 1-{MAX_EVENTS}")] = 50,
    ) -> Annotated[CallToolResult, EventsResult]:
        """The audit trail: the stored events in commit order (who requested each job, every step of its
        worker, cancels, cleanups), with a check of the log's hash chain up to its head."""
        with tool_errors("salesforce_backup_events"):
            page, next_after, chain = holder.get().events(
                job_id=job_id.strip() if job_id else None, after=after, limit=limit
            )
        result = EventsResult(
            events=[EventView.of(e) for e in page],
            next_after=next_after,
            chain=ChainView(**asdict(chain)),
        )
        return answer(result, result.text())

    for fn, name, title, hints in (
        (cancel, "salesforce_backup_cancel", "Cancel a backup job", CANCEL),
        (resume, "salesforce_backup_resume", "Resume an interrupted or retryably failed backup job", START),
        (events, "salesforce_backup_events", "Audit trail of backup jobs", READ),
    ):
        server.add_tool(fn, name=f"{plugin.prefix}{name}", title=title, annotations=hints)
