"""The MCP tools: thin calls into the job runtime, answered with structured results.

Two error channels: our ``PluginError``/``EventLogError`` become ``ToolError`` (an ``isError`` result
the model can read and act on); anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from events import EventLogError, new_job_id
from plugin import config
from plugin.errors import PluginError
from plugin.jobs.options import validate_request
from plugin.jobs.runtime import JobRuntime
from plugin.mcp.results import (
    BackupListResult,
    BackupView,
    JobView,
    StartResult,
    StatusResult,
    job_uri,
    next_offset,
)

M = TypeVar("M", bound=BaseModel)


class RuntimeHolder:
    """Opens the job runtime on first use (so ``register`` works on any host server)."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home
        self._runtime: JobRuntime | None = None
        self._lock = threading.Lock()

    def get(self) -> JobRuntime:
        with self._lock:
            if self._runtime is None:
                self._runtime = JobRuntime(self._home or config.home_dir())
            return self._runtime

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None


@contextmanager
def tool_errors() -> Iterator[None]:
    """Our errors become readable ``isError`` results."""
    try:
        yield
    except (PluginError, EventLogError) as e:
        raise ToolError(str(e)) from e


def answer(model: BaseModel, text: str) -> CallToolResult:
    """A readable text part first, then the same data as JSON, plus structured content."""
    data = model.model_dump(mode="json")
    return CallToolResult(
        content=[
            TextContent(type="text", text=text),
            TextContent(type="text", text=json.dumps(data, ensure_ascii=False)),
        ],
        structured_content=data,
    )


def register(server: MCPServer, *, prefix: str = "", home: Path | None = None) -> RuntimeHolder:
    """Mount the backup tools on ``server`` (ours or a host's own). Returns the runtime holder to close."""
    holder = RuntimeHolder(home)
    # JSON-RPC request ids restart with every connection; prefixed with this server's own id they
    # name one request for good (the correlation id an audit looks up).
    server_run = new_job_id()

    def tool(name: str, title: str, annotations: ToolAnnotations) -> Callable[[Callable[..., CallToolResult]], None]:
        def add(fn: Callable[..., CallToolResult]) -> None:
            server.add_tool(fn, name=f"{prefix}{name}", title=title, annotations=annotations)

        return add

    @tool(
        "salesforce_backup",
        "Start a Salesforce backup",
        ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True),
    )
    def salesforce_backup(
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
                description="ISO date/datetime: start of an incremental or files_only window (default for "
                "incremental: the last backup of this org, minus a 5-minute overlap); not with full"
            ),
        ] = None,
        objects_filter: Annotated[
            list[str] | None,
            Field(description='Only these sObject API names, e.g. ["Account", "Invoice__c"]'),
        ] = None,
        include_files: Annotated[bool, Field(description="ContentVersion bodies (Salesforce Files)")] = True,
        include_attachments: Annotated[bool, Field(description="Attachment bodies")] = True,
        include_documents: Annotated[bool, Field(description="Document bodies")] = True,
        compression: Annotated[bool, Field(description="gzip the CSV files (data/<Object>.csv.gz)")] = False,
        parallel_downloads: Annotated[int, Field(description="File downloads in flight, 1-10")] = 5,
        output_directory: Annotated[
            str | None,
            Field(description="Folder for backups (inside SFBACKUP_HOME or SFBACKUP_ALLOWED_OUTPUT)"),
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
        with tool_errors():
            runtime = holder.get()
            options = validate_request(
                home=runtime.home,
                backup_type=backup_type,
                since_date=since_date,
                objects_filter=objects_filter,
                include_files=include_files,
                include_attachments=include_attachments,
                include_documents=include_documents,
                compression=compression,
                parallel_downloads=parallel_downloads,
                output_directory=output_directory,
                content_versions=content_versions,
            )
            job = runtime.start_backup(options, actor="mcp", correlation_id=f"mcp:{server_run}:{ctx.request_id}")
        result = StartResult(
            job_id=job.job_id,
            status=job.status,
            backup_directory=job.backup_directory or "",
            resource_uri=job_uri(job.job_id),
            message=(
                f"Backup job {job.job_id} started ({options.backup_type}). It runs in the background; "
                f"the backup will be written to {job.backup_directory}. Check it with "
                f'salesforce_backup_status(job_id="{job.job_id}").'
            ),
        )
        return answer(result, result.text())

    @tool(
        "salesforce_backup_status",
        "Backup job status",
        ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    def salesforce_backup_status(
        job_id: Annotated[str | None, Field(description="A job id; omit to list jobs newest first")] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Jobs per page when listing")] = 20,
        offset: Annotated[int, Field(ge=0, description="Jobs to skip when listing")] = 0,
    ) -> Annotated[CallToolResult, StatusResult]:
        """Status of one backup job (progress, counts, folder, error), or of all jobs newest first.

        Reads the local event log only: works offline, and finished jobs stay visible forever.
        """
        with tool_errors():
            runtime = holder.get()
            if job_id:
                view = JobView.of(runtime.job(job_id.strip()))
                result = StatusResult(job=view, total=1, limit=1)
            else:
                jobs, total = runtime.jobs(limit=limit, offset=offset)
                result = StatusResult(
                    jobs=[JobView.of(j) for j in jobs],
                    total=total,
                    offset=offset,
                    limit=limit,
                    next_offset=next_offset(offset, len(jobs), total),
                )
        return answer(result, result.text())

    @tool(
        "salesforce_backup_list",
        "List finished backups",
        ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    def salesforce_backup_list(
        org_id: Annotated[str | None, Field(description="Only backups of this org id")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> Annotated[CallToolResult, BackupListResult]:
        """Finished backups, newest first, with their manifest summary (objects, records, files, bytes, folder)."""
        with tool_errors():
            entries, total = holder.get().backups(limit=limit, offset=offset, org_id=org_id)
        result = BackupListResult(
            backups=[BackupView.of(e) for e in entries],
            total=total,
            offset=offset,
            limit=limit,
            next_offset=next_offset(offset, len(entries), total),
        )
        return answer(result, result.text())

    @server.resource(
        "backup://jobs",
        name=f"{prefix}jobs",
        mime_type="application/json",
        description="All backup jobs, newest first (first 200)",
    )
    def read_jobs() -> str:
        with tool_errors():
            jobs, total = holder.get().jobs(limit=200, offset=0)
        return json.dumps({"total": total, "jobs": [JobView.of(j).model_dump(mode="json") for j in jobs]})

    @server.resource(
        "backup://jobs/{job_id}",
        name=f"{prefix}job",
        mime_type="application/json",
        description="One backup job's status",
    )
    def read_job(job_id: str) -> str:
        with tool_errors():
            return JobView.of(holder.get().job(job_id)).model_dump_json()

    return holder
