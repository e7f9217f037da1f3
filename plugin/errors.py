"""The plugin's error tree: one base so every shell (MCP tool, CLI) needs one ``except``.

PluginError
├── ConfigError          environment or arguments are unusable; the message says what to set
├── HomeError            SFBACKUP_HOME cannot be created or written, or its events.db cannot be trusted
├── BackupRequestError   a salesforce_backup argument is invalid
├── JobNotFoundError     no job with that id in the event log
├── JobStateError        the job's state does not allow it (cancel a finished job, resume a running one)
├── LeaseLostError       a worker lost its lease (fenced): nothing it appends counts any more
└── SalesforceError      (plugin.salesforce.errors) anything the org or the network did
"""

from __future__ import annotations


class PluginError(Exception):
    """Base of every error the plugin raises on purpose; ``str(e)`` is fit to show a user."""


class ConfigError(PluginError):
    """The environment lacks or garbles a setting."""


class HomeError(PluginError):
    """The home folder or its event log cannot be used; the message names the folder and the way out."""


class BackupRequestError(PluginError):
    """An argument of a backup request is invalid."""


class JobNotFoundError(PluginError):
    """A job id that the event log does not know."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"No job with id {job_id!r}. Call salesforce_backup_status without a job_id "
            "(or run `sfbackup status`) to list the known jobs."
        )
        self.job_id = job_id


class JobStateError(PluginError):
    """The job exists, but its state does not allow the operation; the message says what does."""


class LeaseLostError(PluginError):
    """The worker's lease is gone or belongs to a newer attempt: it must stop without recording anything."""
