"""The MCP resources: ``backup://jobs`` (newest jobs) and ``backup://jobs/{job_id}`` (one job).

Clients subscribe to a job's URI (``resources/subscribe`` or ``subscriptions/listen``) and re-read it
when told it changed; the text is the same JSON that ``salesforce_backup_status`` returns for the job.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from events import EventLogError
from plugin.errors import JobNotFoundError, PluginError
from plugin.mcp.results import JobView
from projections import ProjectionError

if TYPE_CHECKING:
    from plugin.mcp.mount import BackupPlugin

JOBS_URI = "backup://jobs"
JOBS_SHOWN = 200


def add_resources(server: MCPServer, plugin: BackupPlugin) -> None:
    """Add the two resources to ``server``; their names carry ``plugin.prefix``, their URIs do not."""
    holder = plugin.runtime

    @server.resource(
        JOBS_URI,
        name=f"{plugin.prefix}jobs",
        title="Backup jobs",
        mime_type="application/json",
        description=f"All backup jobs, newest first (the first {JOBS_SHOWN})",
    )
    def read_jobs() -> str:
        try:
            jobs, total = holder.get().jobs(limit=JOBS_SHOWN, offset=0)
        except (PluginError, EventLogError, ProjectionError) as e:
            raise ResourceError(str(e)) from e
        return json.dumps({"total": total, "jobs": [JobView.of(j).model_dump(mode="json") for j in jobs]})

    @server.resource(
        "backup://jobs/{job_id}",
        name=f"{plugin.prefix}job",
        title="Backup job",
        mime_type="application/json",
        description="One backup job's status (subscribe to follow it)",
    )
    def read_job(job_id: str) -> str:
        try:
            return JobView.of(holder.get().job(job_id)).model_dump_json()
        except JobNotFoundError as e:
            raise ResourceNotFoundError(str(e)) from e
        except (PluginError, EventLogError, ProjectionError) as e:
            raise ResourceError(str(e)) from e
