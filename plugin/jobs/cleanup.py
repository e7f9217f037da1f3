"""Cleanup after a job ends, and the retention policy: files go, history stays.

Who runs it: the worker itself, ``SFBACKUP_CLEANUP_DELAY`` seconds after its job ended (so cleanup
happens with no server running), and every server's housekeeping, which finds ended jobs nobody
cleaned (a worker killed during the delay, a job cancelled while queued). Each cleanup is one
``job.cleaned`` event saying what went and why; racing cleaners record it once (the stream is
re-read under the write lock). Folders are renamed away before they are deleted, so of two processes
deleting the same folder exactly one succeeds and records it.

After a job ends: its lease (if one was left) and, for a failed or cancelled job, its ``.partial``
folder. An interrupted job, and one that failed with a retryable error (an API limit, the network),
keeps its ``.partial`` folder for a resume and is not cleaned until it ends otherwise.
Retention (off unless configured): ``SFBACKUP_KEEP_BACKUPS=N`` keeps the N newest completed backups
of each org, ``SFBACKUP_MAX_BACKUP_AGE_DAYS=D`` deletes completed backups finished more than D days
ago and the ``.partial`` folders of jobs interrupted (or failed retryably) that long ago. The newest backup of an org is
never deleted, and a folder is deleted only if its ``manifest.json`` names the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

from events import EventLog
from events.ids import job_stream
from events.vocabulary import JobCleaned
from plugin.jobs import leases
from plugin.jobs.settings import RuntimeSettings
from plugin.jobs.state import ENDED, read_state, resumable, system_event
from plugin.salesforce.manifest import partial_directory
from projections import BackupEntry, ProjectionStore, job_status

logger = logging.getLogger(__name__)
DAY = 86400.0


def _epoch(stamp: str | None) -> float | None:
    return None if not stamp else datetime.fromisoformat(stamp).timestamp()


def remove_tree(path: Path) -> bool:
    """Delete a folder if this process is the one that claims it (an atomic rename); True if it did."""
    if path.is_symlink() or not path.is_dir():
        return False
    doomed = path.with_name(f"{path.name}.deleting-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return False  # another cleaner took it first
    try:
        shutil.rmtree(doomed)
    except OSError as e:
        logger.warning("could not delete all of %s: %s", doomed, e)
    return True


def _record(log: EventLog, job_id: str, removed: list[str], why: str, *, once: bool) -> JobCleaned | None:
    with log.write_transaction() as tx:
        state = read_state(tx, job_id)
        if state is None or (once and (state.status.cleaned or not state.ended)):
            return None
        if once:
            dropped = leases.release(tx, job_id)
            if dropped is not None:
                removed.append(f"lease of attempt {dropped.attempt}")
        payload = JobCleaned(removed=tuple(removed), reason=why)
        tx.append(job_stream(job_id), [system_event(state, payload, actor="cleanup")], expected_version=state.version)
    logger.info("job %s cleaned (%s): %s", job_id, why, removed)
    return payload


def cleanup_job(log: EventLog, job_id: str, settings: RuntimeSettings) -> JobCleaned | None:
    """Clean one ended job now (whatever the delay); None if it is not ended or was cleaned already."""
    history = log.read_stream(job_stream(job_id))
    status = job_status.project_jobs(history).get(job_id)
    if status is None or status.status not in ENDED or status.cleaned or resumable(status):
        return None
    removed: list[str] = []
    if status.status in ("failed", "cancelled") and status.backup_directory:
        partial = partial_directory(status.backup_directory)
        if remove_tree(partial):
            removed.append(str(partial))
    why = f"job {status.status}; cleanup {settings.cleanup_delay:g} s after it ended (SFBACKUP_CLEANUP_DELAY)"
    return _record(log, job_id, removed, why, once=True)


def cleanup_due(log: EventLog, store: ProjectionStore, settings: RuntimeSettings, *, fresh: bool) -> list[str]:
    """Clean every ended job whose cleanup delay has passed; return their ids.

    ``fresh=False`` looks at the projections as they are (no catch-up write): enough for a worker
    tidying up after others, since servers look again with ``fresh=True``.
    """
    now = time.time()
    done: list[str] = []
    due = store.find_jobs(statuses=("completed", "cancelled"), cleaned=False, limit=1000, catch_up=fresh)
    due += store.find_jobs(statuses=("failed",), cleaned=False, retryable=False, limit=1000, catch_up=False)
    for job in due:
        ended = _epoch(job.finished_at)
        if ended is not None and now - ended >= settings.cleanup_delay and cleanup_job(log, job.job_id, settings):
            done.append(job.job_id)
    return done


def _is_backup_of(folder: Path, job_id: str) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("job_id") == job_id


def _retention_reason(index: int, entry: BackupEntry, settings: RuntimeSettings, now: float) -> str | None:
    keep, age = settings.keep_backups, settings.max_backup_age_days
    if index == 0:
        return None  # the newest backup of an org always stays
    if keep is not None and index >= keep:
        return f"retention: SFBACKUP_KEEP_BACKUPS={keep} keeps the {keep} newest backups of org {entry.org_id}"
    finished = _epoch(entry.finished_at)
    if age is not None and finished is not None and now - finished > age * DAY:
        return (
            f"retention: finished more than {age:g} days ago (SFBACKUP_MAX_BACKUP_AGE_DAYS) and not the newest "
            f"backup of org {entry.org_id}"
        )
    return None


def apply_retention(
    log: EventLog, store: ProjectionStore, settings: RuntimeSettings, *, org_id: str | None = None
) -> list[str]:
    """Delete the backup folders the policy no longer keeps (one org, or all); return their job ids."""
    if settings.keep_backups is None and settings.max_backup_age_days is None:
        return []
    now = time.time()
    by_org: dict[str | None, list[BackupEntry]] = {}
    for entry in store.backups(limit=1 << 62, org_id=org_id):  # newest first
        by_org.setdefault(entry.org_id, []).append(entry)
    done: list[str] = []
    for entries in by_org.values():
        for index, entry in enumerate(entries):
            why = _retention_reason(index, entry, settings, now)
            folder = Path(entry.backup_directory)
            if why and _is_backup_of(folder, entry.job_id) and remove_tree(folder):
                _record(log, entry.job_id, [str(folder)], why, once=False)
                done.append(entry.job_id)
    age = settings.max_backup_age_days
    if age is not None:
        waiting = store.find_jobs(statuses=("interrupted",), limit=1000)
        waiting += store.find_jobs(statuses=("failed",), cleaned=False, retryable=True, limit=1000, catch_up=False)
        for job in waiting:
            ended = _epoch(job.finished_at)
            if org_id not in (None, job.org_id) or ended is None or now - ended <= age * DAY:
                continue
            partial = partial_directory(job.backup_directory or "")
            if job.backup_directory and remove_tree(partial):
                how = "interrupted" if job.status == "interrupted" else "failed retryably"
                why = f"retention: {how} more than {age:g} days ago and never resumed (SFBACKUP_MAX_BACKUP_AGE_DAYS)"
                _record(log, job.job_id, [str(partial)], why, once=False)
                done.append(job.job_id)
    return done
