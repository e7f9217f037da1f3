"""What a worker does after its job's end: hand the slot on, wait the cleanup delay, clean up.

Queued jobs get the freed slot at once; after ``SFBACKUP_CLEANUP_DELAY`` the job (and any other ended
job nobody cleaned) is cleaned, and a completed backup applies the retention policy to its org.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import structlog

from events import EventLog, EventLogError
from plugin.errors import PluginError
from plugin.jobs import cleanup

log = structlog.get_logger("sfbackup.worker")


def after_end(home: Path, job_id: str, event_log: EventLog | None = None) -> None:
    """What follows a job's end: queued jobs get the freed slot at once; after the cleanup delay the
    job (and any other ended job nobody cleaned) is cleaned, and a completed backup applies retention.
    ``event_log`` reuses the worker's connection (each open runs a quick_check of the whole file)."""
    from plugin.jobs.runtime import JobRuntime

    try:
        runtime = JobRuntime(home, log=event_log)
    except (PluginError, EventLogError) as e:
        log.warning("no cleanup after the job", job_id=job_id, error=str(e))
        return
    try:
        runtime.start_queued()
        job = runtime.job(job_id)
        ended = datetime.fromisoformat(job.finished_at).timestamp() if job.finished_at else time.time()
        time.sleep(max(0.0, ended + runtime.settings.cleanup_delay - time.time()))
        cleanup.cleanup_job(runtime.log, job_id, runtime.settings)
        cleanup.cleanup_due(runtime.log, runtime.store, runtime.settings, fresh=False)
        if job.status == "completed" and job.org_id:
            cleanup.apply_retention(runtime.log, runtime.store, runtime.settings, org_id=job.org_id)
    except (PluginError, EventLogError) as e:
        log.warning("cleanup after the job failed; a server or the next job will do it", job_id=job_id, error=str(e))
    finally:
        runtime.close()


def spawn_after_end(home: Path, job_id: str) -> None:
    """Hand the after-end duties to a fresh process (this one is about to exit mid-export)."""
    try:
        subprocess.Popen(
            [sys.executable, "-m", "plugin.jobs.worker", "--home", str(home), "--after-end", job_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        log.warning("could not start the cleanup process; a server or the next job will clean up", error=str(e))
