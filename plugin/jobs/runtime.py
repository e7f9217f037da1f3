"""The job runtime: records a backup request and starts its worker process, without waiting.

Tools and CLI commands call this; it never talks to Salesforce except, once, to learn the org id
when neither the session token nor an earlier job tells it.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events import EventLog
from events.codec import encode
from events.ids import job_stream, new_job_id
from events.vocabulary import JobRequested
from plugin import config
from plugin.errors import JobNotFoundError
from plugin.jobs.options import BackupOptions
from plugin.salesforce.client import OrgClient, org_id_from_token
from projections import BackupEntry, JobStatus, ProjectionStore


def backups_root(home: Path) -> Path:
    return home / "backups"


def folder_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _os_user() -> str | None:
    """The login name the request ran under (who, for the audit); None where the OS has none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


class JobRuntime:
    """One process's handle on the event log, the projections and the workers it started."""

    def __init__(self, home: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.env = dict(os.environ if env is None else env)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log = EventLog.open(config.events_path(home))
        self.store = ProjectionStore(self.log)
        self._lock = threading.RLock()
        self._children: list[subprocess.Popen[bytes]] = []

    def close(self) -> None:
        self.log.close()

    # -- reads ----------------------------------------------------------------------------------
    def job(self, job_id: str) -> JobStatus:
        with self._lock:
            status = self.store.job(job_id)
        if status is None:
            raise JobNotFoundError(job_id)
        return status

    def jobs(self, *, limit: int = 20, offset: int = 0) -> tuple[list[JobStatus], int]:
        with self._lock:
            self.store.catch_up()
            return self.store.jobs(limit=limit, offset=offset), self.store.count_jobs()

    def backups(self, *, limit: int = 20, offset: int = 0, org_id: str | None = None) -> tuple[list[BackupEntry], int]:
        with self._lock:
            self.store.catch_up()
            return self.store.backups(limit=limit, offset=offset, org_id=org_id), self.store.count_backups(org_id)

    # -- starting a backup ----------------------------------------------------------------------
    def resolve_org_id(self, credentials: config.Credentials, api_version: str) -> str:
        """The org id for the backup path: from the session token, else by asking the org once."""
        from_token = org_id_from_token(credentials.access_token)
        if from_token:
            return from_token
        client = OrgClient(credentials, api_version=api_version, extra_ca=config.ca_bundle(self.env), timeout=(10, 30))
        try:
            return client.identity().org_id
        finally:
            client.close()

    def start_backup(
        self,
        options: BackupOptions,
        *,
        actor: str = "mcp",
        tool: str | None = "salesforce_backup",
        correlation_id: str | None = None,
        spawn: bool = True,
    ) -> JobStatus:
        """Append ``job.requested`` and start a worker; returns the job as the projection sees it.

        Raises:
            ConfigError: credentials missing or unusable.
            SalesforceError: the org id could not be learned.
        """
        credentials = config.credentials_from_env(self.env)
        api_version = config.api_version(self.env)
        org_id = self.resolve_org_id(credentials, api_version)
        job_id = new_job_id()
        # Resolved now, so the worker can tell a symlink put on the way later (options.recheck_backup_directory).
        root = Path(options.output_directory) if options.output_directory else backups_root(self.home.resolve())
        directory = root / org_id / f"{folder_stamp(datetime.now(UTC))}-{job_id}"
        payload = JobRequested(
            job_id=job_id,
            backup_type=options.backup_type,  # type: ignore[arg-type]
            backup_directory=str(directory),
            org_id=org_id,
            instance_url=credentials.instance_url,
            api_version=api_version,
            **{k: v for k, v in asdict(options).items() if k not in ("backup_type",)},
        )
        metadata: dict[str, Any] = {
            "actor": actor,
            "tool": tool,
            "user": _os_user(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "auth": credentials.kind,
        }
        event = encode(payload, metadata=metadata, correlation_id=correlation_id)
        with self._lock:
            self.log.append(job_stream(job_id), [event], expected_version=0)
        if spawn:
            self.spawn_worker(job_id)
        return self.job(job_id)

    def spawn_worker(self, job_id: str, *, resume: bool = False) -> subprocess.Popen[bytes]:
        """Start the worker as its own session, so it outlives the MCP connection and the server.

        ``resume``: the next attempt of a job that failed retryably or was interrupted; it exports
        only what earlier attempts did not finish (the worker refuses any other job).
        """
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True, mode=0o700)
        flags = ["--resume"] if resume else []
        # Owner-only files from their creation: the log here, the backup (umask) in the worker.
        fd = os.open(logs / f"{job_id}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "ab") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "plugin.jobs.worker", "--home", str(self.home), *flags, job_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.env,
                start_new_session=True,
                close_fds=True,
                umask=0o077,
            )
        self._children.append(proc)
        # Reap the child when it ends, so no zombie lingers while the server runs.
        threading.Thread(target=proc.wait, name=f"reap-{job_id}", daemon=True).start()
        return proc
