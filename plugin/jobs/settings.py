"""The job runtime's knobs, read from the environment (documented in the README's configuration table).

Every value is checked once, here: a garbled setting is a ``ConfigError`` naming the variable and what
it accepts, never a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from plugin.config import env_number
from plugin.errors import ConfigError

DEFAULT_MAX_WORKERS = 4
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_CLEANUP_DELAY = 5.0  # as in the original server
DEFAULT_CANCEL_GRACE = 10.0
# A claimed slot waits this long for its worker process to start and take the lease.
WORKER_START_SECONDS = 60.0
# A worker stops on its own this soon after a cancel, even when the export is stuck in a network call.
WORKER_STOP_GRACE = 1.0
# Workers run at this niceness (a background export yields the CPU to the MCP server answering the
# host, and to whatever the user is doing); what they do and record is the same at any priority.
WORKER_NICENESS = 10


@dataclass(frozen=True)
class RuntimeSettings:
    """How many workers run at once, how long a lease lasts, when cleanup and retention act."""

    max_workers: int = DEFAULT_MAX_WORKERS
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    cleanup_delay: float = DEFAULT_CLEANUP_DELAY
    cancel_grace: float = DEFAULT_CANCEL_GRACE
    keep_backups: int | None = None
    max_backup_age_days: float | None = None

    @property
    def heartbeat_seconds(self) -> float:
        """Six heartbeats per lease: a worker must miss five in a row before it counts as lost."""
        return self.lease_seconds / 6

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Read ``SFBACKUP_MAX_WORKERS`` and friends.

        Raises:
            ConfigError: a value is not a number in its range.
        """
        env = os.environ if env is None else env
        workers = env_number(
            env, "SFBACKUP_MAX_WORKERS", DEFAULT_MAX_WORKERS, low=1, whole=True, what="a whole number >= 1"
        )
        keep = env_number(
            env, "SFBACKUP_KEEP_BACKUPS", None, low=1, whole=True, what="a whole number >= 1 (backups kept per org)"
        )
        lease = env_number(env, "SFBACKUP_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, low=0.5, what="seconds >= 0.5")
        delay = env_number(env, "SFBACKUP_CLEANUP_DELAY", DEFAULT_CLEANUP_DELAY, low=0, what="seconds >= 0")
        grace = env_number(env, "SFBACKUP_CANCEL_GRACE", DEFAULT_CANCEL_GRACE, low=0, what="seconds >= 0")
        age = env_number(env, "SFBACKUP_MAX_BACKUP_AGE_DAYS", None, low=0, what="days > 0")
        if age == 0:
            raise ConfigError("SFBACKUP_MAX_BACKUP_AGE_DAYS=0 would delete every backup; use days > 0 or unset it.")
        assert workers is not None and lease is not None and delay is not None and grace is not None
        return cls(
            max_workers=int(workers),
            lease_seconds=lease,
            cleanup_delay=delay,
            cancel_grace=grace,
            keep_backups=None if keep is None else int(keep),
            max_backup_age_days=age,
        )
