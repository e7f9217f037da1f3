"""The MCP tools: thin calls into the job runtime, answered with structured results.

Two error channels: our ``PluginError``/``EventLogError`` become ``ToolError`` (an ``isError`` result
the model can read and act on); anything else is a bug, logged with its traceback on stderr and
answered with a short ``isError`` text that names no internals. Argument limits live in the
signatures, so the input schema advertises them and the SDK refuses bad input before we run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from events import EventLogError
from plugin.errors import PluginError
from plugin.jobs.options import MAX_FILTER, BackupOptions, validate_request
from plugin.jobs.runtime import BackupStart, JobRuntime
from plugin.mcp.results import (
    BackupListResult,
    BackupView,
    JobView,
    StartResult,
    StatusResult,
    job_uri,
    next_offset,
)
from plugin.mcp.status_answers import job_answer, page_answer, prepare, respond
from plugin.trail import ENDED_STATUSES
from projections import PoisonEventError, ProjectionError

if TYPE_CHECKING:
    from plugin.mcp.mount import BackupPlugin

logger = logging.getLogger(__name__)

MAX_PAGE = 200
MAX_OFFSET = 1_000_000_000
MAX_WAIT = 50.0  # hosts cut tool calls at about 60 s
JobId = Annotated[str, Field(min_length=1, max_length=64, description="A job id, as salesforce_backup returned it")]
OrgId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$", description="A 15- or 18-character org id")]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"Items per page, 1-{MAX_PAGE}")]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Items to skip (the next_offset of the last page)")]

START = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Our errors become readable ``isError`` results; a bug becomes one that says where to look."""
    try:
        yield
    except (PluginError, EventLogError) as e:
        raise ToolError(str(e)) from e
    except PoisonEventError as e:  # the log holds an event the status cannot be folded past
        logger.error("%s: %s", tool, e)
        raise ToolError(
            f"The job status cannot be brought up to date: the event at position {e.position} of the event log "
            f"cannot be applied ({e.reason}). Run `sfbackup verify` on the server's machine: it checks the log "
            "and names every damaged event."
        ) from e
    except ProjectionError as e:  # the log was rewritten under the projections: the message says what to run
        logger.error("%s: %s", tool, e)
        raise ToolError(f"The job status cannot be brought up to date: {e}.") from e
    except Exception as e:
        logger.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"Internal error ({type(e).__name__}) in {tool}; the sfbackup server's log (its stderr) has the "
            "details, please report it. Reading again is safe; before starting a backup again, check "
            "salesforce_backup_status, since the job may have been recorded."
        ) from e


def start_message(start: BackupStart, backup_type: str, max_workers: int) -> str:
    follow = f'Check it with salesforce_backup_status(job_id="{start.job_id}").'
    if start.already_running:
        job = start.job  # the running job, read in the request
        return (
            f"A full backup of org {job.org_id} is already {job.status} as job {job.job_id} (requested "
            f"{job.requested_at}); only one full backup per org runs at a time, so no new job was started. "
            f"It writes to {job.backup_directory}. {follow}"
        )
    if start.attempt is None:
        return (
            f"Backup job {start.job_id} ({backup_type}) is queued: all {max_workers} worker slots are busy "
            f"(SFBACKUP_MAX_WORKERS). It starts when a running backup ends and will be written to "
            f"{start.backup_directory}. {follow}"
        )
    return (
        f"Backup job {start.job_id} started ({backup_type}). It runs in the background; "
        f"the backup will be written to {start.backup_directory}. {follow}"
    )


async def wait_for_job(
    plugin: BackupPlugin,
    ctx: Context,
    job_id: str,
    seconds: float,
    read: Callable[[], StatusResult],
) -> StatusResult:
    """Re-read the job at each of its events until it ends or ``seconds`` pass, reporting its percent
    as progress (strictly increasing values, as the protocol wants); the event loop stays free."""
    deadline = anyio.current_time() + seconds
    reported = -1.0
    while True:
        changed = plugin.watch.register(job_id)
        result = await anyio.to_thread.run_sync(read)
        job = result.job
        assert job is not None
        if job.percent > reported:
            reported = float(job.percent)
            await ctx.report_progress(reported, 100, job.text())
        remaining = deadline - anyio.current_time()
        if job.status in ENDED_STATUSES or remaining <= 0:
            return result
        await plugin.watch.wait(job_id, changed, remaining)


def answer(model: BaseModel, text: str) -> CallToolResult:
    """A readable text part first, then the same data as JSON, plus structured content."""
    return respond(prepare(model, text))


def add_tools(server: MCPServer, plugin: BackupPlugin) -> None:
    """Add the three tools to ``server`` under ``plugin.prefix``."""
    holder = plugin.runtime
    server_run = plugin.run_id

    def tool(name: str, title: str, annotations: ToolAnnotations) -> Callable[[Callable[..., Any]], None]:
        def add(fn: Callable[..., Any]) -> None:
            server.add_tool(fn, name=f"{plugin.prefix}{name}", title=title, annotations=annotations)

        return add

    Requested = tuple[JobRuntime, BackupOptions, BackupStart]

    def request_now(arguments: dict[str, Any], correlation_id: str) -> Requested | None:
        runtime = holder.current()
        if runtime is None:  # opening it checks the log: a thread's work
            return None
        options = validate_request(home=runtime.home, **arguments)
        start = runtime.request_backup_now(options, actor="mcp", correlation_id=correlation_id)
        return None if start is None else (runtime, options, start)

    def request_in_thread(arguments: dict[str, Any], correlation_id: str) -> Requested:
        runtime = holder.get()
        options = validate_request(home=runtime.home, **arguments)
        return runtime, options, runtime.request_backup(options, actor="mcp", correlation_id=correlation_id)

    @tool("salesforce_backup", "Start a Salesforce backup", START)
    async def salesforce_backup(
        ctx: Context,
        backup_type: Annotated[
            Literal["full", "incremental", "files_only"],
            Field(
                description="full: every object; incremental: rows changed since the last backup of this "
                "org (or since_date), deletions included; files_only: ContentVersion/Attachment/Document, "
                "their bodies and ContentDocumentLink"
            ),
        ] = "incremental",
        since_date: Annotated[
            str | None,
            Field(
                max_length=64,
                description="ISO date/datetime: start of an incremental or files_only window (default for "
                "incremental: the last backup of this org, minus a 5-minute overlap); not with full",
            ),
        ] = None,
        objects_filter: Annotated[
            list[Annotated[str, Field(max_length=255)]] | None,
            Field(max_length=MAX_FILTER, description='Only these sObject API names, e.g. ["Account", "Invoice__c"]'),
        ] = None,
        include_files: Annotated[bool, Field(description="ContentVersion bodies (Salesforce Files)")] = True,
        include_attachments: Annotated[bool, Field(description="Attachment bodies")] = True,
        include_documents: Annotated[bool, Field(description="Document bodies")] = True,
        compression: Annotated[bool, Field(description="gzip the CSV files (data/<Object>.csv.gz)")] = False,
        parallel_downloads: Annotated[int, Field(ge=1, le=10, description="File downloads in flight, 1-10")] = 5,
        output_directory: Annotated[
            str | None,
            Field(max_length=4096, description="Folder for backups (inside SFBACKUP_HOME or SFBACKUP_ALLOWED_OUTPUT)"),
        ] = None,
        content_versions: Annotated[
            Literal["all", "latest"],
            Field(description="Salesforce Files: every version (all) or only the current one (latest)"),
        ] = "all",
    ) -> Annotated[CallToolResult, StartResult]:
        """Start a backup of the Salesforce org in the background and answer at once with its job id.

        A worker process exports every queryable object to CSV (Data Loader format) and file bodies,
        with a checksummed manifest. Follow it with salesforce_backup_status(job_id) or the resource
        backup://jobs/{job_id}.
        """
        arguments = {
            "backup_type": backup_type,
            "since_date": since_date,
            "objects_filter": objects_filter,
            "include_files": include_files,
            "include_attachments": include_attachments,
            "include_documents": include_documents,
            "compression": compression,
            "parallel_downloads": parallel_downloads,
            "output_directory": output_directory,
            "content_versions": content_versions,
        }
        correlation_id = f"mcp:{server_run}:{ctx.request_id}"
        with tool_errors("salesforce_backup"):
            # On the event loop when nothing has to wait (the usual case: a fraction of a millisecond,
            # less than handing over to a thread and back); else on a thread, as a sync tool runs.
            # An output_directory is resolved on the file system: a thread's work.
            done = request_now(arguments, correlation_id) if not output_directory else None
            if done is None:
                done = await anyio.to_thread.run_sync(request_in_thread, arguments, correlation_id)
            runtime, options, start = done
            plugin.starter.submit(runtime, start)
        result = StartResult(
            job_id=start.job_id,
            status=start.status,
            backup_directory=start.backup_directory or "",
            resource_uri=job_uri(start.job_id),
            message=start_message(start, options.backup_type, runtime.settings.max_workers),
            already_running=start.already_running,
            queued=start.attempt is None and not start.already_running,
        )
        return answer(result, result.text())

    def read_status(job_id: str) -> StatusResult:
        with tool_errors("salesforce_backup_status"):
            return StatusResult(job=JobView.of(holder.get().job(job_id)), total=1, limit=1)

    def read_answer(job_id: str | None, limit: int, offset: int) -> CallToolResult:
        """The answer without waiting, made once per state of the job or page (status_answers)."""
        with tool_errors("salesforce_backup_status"):
            runtime = holder.get()
            if job_id:
                return respond(job_answer(runtime.job(job_id)))
            jobs, total = runtime.jobs(limit=limit, offset=offset)
            return respond(page_answer(tuple(jobs), total, offset, limit))

    @tool("salesforce_backup_status", "Backup job status", READ)
    async def salesforce_backup_status(
        ctx: Context,
        job_id: Annotated[JobId | None, Field(description="A job id; omit to list jobs newest first")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT,
                description=f"With job_id: wait up to this long (at most {MAX_WAIT:g} s, below host timeouts) "
                "for the job to end, sending progress notifications; then answer with its state",
            ),
        ] = 0,
    ) -> Annotated[CallToolResult, StatusResult]:
        """Status of one backup job (progress, counts, folder, error), or of all jobs newest first.

        Reads the local event log only: works offline, and finished jobs stay visible forever.
        """
        wanted = job_id.strip() if job_id and job_id.strip() else None
        if not wait_seconds:
            return await anyio.to_thread.run_sync(read_answer, wanted, limit, offset)
        if wanted is None:
            raise ToolError("wait_seconds needs a job_id: it waits for one job to end.")
        result = await wait_for_job(plugin, ctx, wanted, wait_seconds, lambda: read_status(wanted))
        text = result.text()
        if result.job is not None and result.job.status in ("requested", "running"):
            text += f"\nStill {result.job.status} after {wait_seconds:g} s; call again to keep waiting."
        return answer(result, text)

    @tool("salesforce_backup_list", "List finished backups", READ)
    def salesforce_backup_list(
        org_id: Annotated[OrgId | None, Field(description="Only backups of this org id")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Annotated[CallToolResult, BackupListResult]:
        """Finished backups, newest first, with their manifest summary (objects, records, files, bytes, folder)."""
        with tool_errors("salesforce_backup_list"):
            entries, total = holder.get().backups(limit=limit, offset=offset, org_id=org_id)
            result = BackupListResult(
                backups=[BackupView.of(e) for e in entries],
                total=total,
                offset=offset,
                limit=limit,
                next_offset=next_offset(offset, len(entries), total),
            )
        return answer(result, result.text())
