"""Read models computed from events: job status and backup catalog. Pure folds plus a checkpointed store."""

from projections.catalog import BackupEntry
from projections.errors import PoisonEventError, ProjectionError, RewrittenLogError
from projections.job_status import JobError, JobStatus, requested_status
from projections.replay import render, replay
from projections.store import ProjectionStore

__all__ = [
    "BackupEntry",
    "JobError",
    "JobStatus",
    "PoisonEventError",
    "ProjectionError",
    "ProjectionStore",
    "RewrittenLogError",
    "render",
    "replay",
    "requested_status",
]
