"""The job runtime: records backup requests, hands out worker slots and starts worker processes.

Tools and CLI commands call this; it never talks to Salesforce except, once, to learn the org id
when neither the session token nor an earlier job tells it. Every decision that must not race (one
running full backup per org, the cap on concurrent workers, cancel, resume) is taken inside the
``BEGIN IMMEDIATE`` transaction that records it, so any number of servers, CLIs and workers can
share one ``SFBACKUP_HOME``. Recovery and cleanup live in ``recovery.py`` and ``cleanup.py``;
``housekeeping()`` runs them all.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from events import EventLog, EventLogError, NewEvent, RecordedEvent, StoreBusyError, Transaction
from events.codec import encode
from events.ids import job_stream, new_job_id
from events.vocabulary import JobFailed, JobRequested
from plugin import config
from plugin.errors import JobNotFoundError
from plugin.homelog import open_event_log
from plugin.jobs import cleanup, control, leases, recovery
from plugin.jobs.options import BackupOptions
from plugin.jobs.settings import WORKER_NICENESS, WORKER_START_SECONDS, RuntimeSettings
from plugin.jobs.state import ACTIVE, read_state, system_event
from plugin.salesforce.client import OrgClient
from plugin.salesforce.identity import org_id_from_token
from plugin.trail import ChainCheck, ChainChecker, events_page
from projections import BackupEntry, JobStatus, ProjectionStore, requested_status

logger = logging.getLogger(__name__)


def backups_root(home: Path) -> Path:
    return home / "backups"


def folder_stamp(seconds: float | None = None) -> str:
    """The backup folder's time prefix (UTC, to the second), for now or for a unix time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


_REQUESTED_OPTIONS = tuple(f.name for f in fields(BackupOptions) if f.name != "backup_type")


def _os_user() -> str | None:
    """The login name the request ran under (who, for the audit); None where the OS has none.

    ``getpass.getuser``'s order: the environment first, then the account database, whose look-up
    (an NSS read of /etc/passwd, a tenth of a request's time) is made once per process.
    """
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    return _account_name()


@functools.cache
def _account_name() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


def lower_priority(pid: int) -> None:
    """Give a worker ``WORKER_NICENESS`` right after it was started (before its imports, ~0.5 s of CPU),
    so it competes less with the server's answers; its children (the after-end worker) inherit it."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(WORKER_NICENESS, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError as e:  # gone already (it then fails visibly on its own), or not permitted
        logger.info("worker %d keeps its priority: %s", pid, e)


@dataclass(frozen=True)
class BackupStart:
    """What ``request_backup`` decided: the job, and the attempt to start a worker for (None: queued,
    or ``already_running`` when a full backup of the org was running and this is that job).

    ``job`` is made when first asked for: a new job's is the fold of its one event, which the answer to
    the request does not need (its id, status and folder are here), so it is not made on that path.
    """

    job_id: str
    status: str
    backup_directory: str | None
    attempt: int | None
    already_running: bool = False
    fold: Callable[[], JobStatus] = field(kw_only=True, repr=False, compare=False)

    @classmethod
    def of(cls, job: JobStatus, attempt: int | None, *, already_running: bool = False) -> BackupStart:
        """For a job whose status is at hand."""
        return cls(job.job_id, job.status, job.backup_directory, attempt, already_running, fold=lambda: job)

    @functools.cached_property
    def job(self) -> JobStatus:
        return self.fold()


QUICK_FOLD = 200  # pending events a request on the event loop folds itself (about a millisecond) before it hands over
# ... and their data at most (a fold takes as long as its JSON: 200 requests naming 2,000 objects each, 33 MB,
# took 115-150 ms); 256 KiB is 200 usual events several times over, and about 2 ms of the largest ones.
QUICK_FOLD_BYTES = 256 * 1024
# Requests the event loop's connection, which never checkpoints, records in a row before it hands one over: that
# one commits on the runtime's own connection, which copies the WAL back once it holds 1,000 pages (about 5 a
# request), so the WAL stays bounded when nothing else commits (every slot taken, incremental requests only).
QUICK_COMMITS = 200


@dataclass(frozen=True)
class _RequestSettings:
    """What every request of a runtime shares, worked out once: the environment does not change."""

    credentials: config.Credentials
    api_version: str
    token_org_id: str | None  # the org id a session id starts with (None: learned by a login)
    ca_bundle: tuple[str, Path] | None  # SFBACKUP_CA_BUNDLE as given and as a path, checked per request
    who: tuple[str | None, str, int]  # the audit's user, host and pid


@dataclass(frozen=True)
class _Request:
    payload: JobRequested
    event: NewEvent


class _WouldWait(Exception):
    """``request_backup_now`` stops: the rest would take long."""


class JobRuntime:
    """One process's handle on the event log, the projections and the workers it started."""

    def __init__(
        self,
        home: Path,
        *,
        env: Mapping[str, str] | None = None,
        settings: RuntimeSettings | None = None,
        log: EventLog | None = None,
    ) -> None:
        """``log`` shares a connection the caller already opened (and closes): a worker's own."""
        self.home = home
        # Resolved once: a request records its folder under the real path this runtime started with,
        # so a symlink put on the way later is one the worker's recheck refuses, not one that is followed.
        self._backups_text = str(backups_root(home.resolve()))
        # The environment it started with, read-only: what a request parses once (_request_settings).
        self.env: Mapping[str, str] = MappingProxyType(dict(os.environ if env is None else env))
        self._parsed: _RequestSettings | None = None
        self.settings = settings or RuntimeSettings.from_env(self.env)
        self._owns_log = log is None
        self.log = open_event_log(config.events_path(home)) if log is None else log
        # request_backup_now's connection, which never waits (none for a runtime on a caller's log: a worker's)
        self._quick = self.log.sibling(busy_timeout=0, autocheckpoint=False) if self._owns_log else None
        self.store = ProjectionStore(self.log)
        leases.ensure_table(self.log)
        self._lock = threading.RLock()
        self._children: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self._closed = False
        self.chain = ChainChecker()
        self._org_ids: dict[config.Credentials, str] = {}  # learned by a login (no org id in a token)
        self._quick_commits = 0  # commits on _quick since a request on self.log (QUICK_COMMITS)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._owns_log:
                self.log.close()
            if self._quick is not None:
                self._quick.close()

    # -- reads ----------------------------------------------------------------------------------
    def job(self, job_id: str) -> JobStatus:
        with self._lock:
            status = self.store.job(job_id)
        if status is None:
            raise JobNotFoundError(job_id)
        return status

    def catch_up(self) -> int:
        """Fold what the projections do not hold yet (a request leaves its event to this); the events applied.

        Committed without the sync, as the request itself is: the fold is derived from the events and
        is made again after a power cut, and a sync here would hold the log's lock (and the next
        request) for the length of an ``fsync``.
        """
        with self._lock:
            return self.store.catch_up(durable=False)

    def jobs(self, *, limit: int = 20, offset: int = 0) -> tuple[list[JobStatus], int]:
        with self._lock:
            self.store.catch_up()
            return self.store.jobs(limit=limit, offset=offset), self.store.count_jobs()

    def backups(self, *, limit: int = 20, offset: int = 0, org_id: str | None = None) -> tuple[list[BackupEntry], int]:
        with self._lock:
            self.store.catch_up()
            return self.store.backups(limit=limit, offset=offset, org_id=org_id), self.store.count_backups(org_id)

    def events(
        self, *, job_id: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[RecordedEvent], int | None, ChainCheck]:
        """A page of the audit trail (one job's events, or all) and the state of the whole hash chain.

        Raises:
            JobNotFoundError: ``job_id`` has no events.
        """
        with self._lock:
            page, next_after = events_page(self.log, job_id=job_id, after=after, limit=limit)
        return page, next_after, self.chain.check(self.log, [e.position for e in page])

    # -- starting a backup ----------------------------------------------------------------------
    def _known_org_id(self, settings: _RequestSettings) -> str | None:
        """The org id without asking Salesforce: from the session id, or learned by an earlier login."""
        return settings.token_org_id or self._org_ids.get(settings.credentials)

    def resolve_org_id(self, settings: _RequestSettings) -> str:
        """The org id for the backup path: ``_known_org_id``, else by asking the org once per
        credentials (a login and a query, hundreds of milliseconds, that no later request repeats:
        the org of a user or connected app does not change)."""
        known = self._known_org_id(settings)
        if known is not None:
            return known
        credentials = settings.credentials
        client = OrgClient(
            credentials, api_version=settings.api_version, extra_ca=config.ca_bundle(self.env), timeout=(10, 30)
        )
        try:
            org_id = self._org_ids[credentials] = client.identity().org_id
        finally:
            client.close()
        return org_id

    def request_backup(
        self,
        options: BackupOptions,
        *,
        actor: str = "mcp",
        tool: str | None = "salesforce_backup",
        correlation_id: str | None = None,
    ) -> BackupStart:
        """Append ``job.requested`` and claim a worker slot in one transaction; start nothing.

        A full backup of an org whose full backup is already requested or running is not recorded
        again: the answer is that job (``already_running``). Over the cap the job waits, queued, and
        ``start_queued`` starts it when a slot frees.

        Raises:
            ConfigError: credentials missing or unusable.
            SalesforceError: the org id could not be learned.
        """
        settings = self._request_settings()
        org_id = self.resolve_org_id(settings)
        request = self._request(options, settings, org_id, actor, tool, correlation_id)
        with self._lock:
            with self.log.write_transaction(durable=False) as tx:
                start = self._record(tx, request)
            self._quick_commits = 0  # that commit checkpointed the WAL, if it was due
        assert start is not None  # no fold limit: nothing was left undone
        return start

    def request_backup_now(
        self,
        options: BackupOptions,
        *,
        actor: str = "mcp",
        tool: str | None = "salesforce_backup",
        correlation_id: str | None = None,
    ) -> BackupStart | None:
        """``request_backup`` if it can be done without waiting, else None with nothing recorded.

        For a caller on an event loop, which hands a None over to a thread's ``request_backup``. It
        would wait when the org id has to be learned from Salesforce, when another thread of this
        runtime is at work, when another connection holds the log's write lock (a worker's commit),
        or when a full backup's check would first fold more than ``QUICK_FOLD`` pending events or
        ``QUICK_FOLD_BYTES`` of their data. Its connection of its own neither waits for the lock nor
        copies the WAL back at commit, so after ``QUICK_COMMITS`` commits it hands over until
        ``request_backup`` has committed on the runtime's connection, which does.

        Raises:
            ConfigError: credentials missing or unusable.
        """
        settings = self._request_settings()
        org_id = self._known_org_id(settings)
        if org_id is None or self._quick is None or self._quick_commits >= QUICK_COMMITS:
            return None
        request = self._request(options, settings, org_id, actor, tool, correlation_id)
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with self._quick.write_transaction(durable=False) as tx:
                start = self._record(tx, request, fold_most=QUICK_FOLD)
                if start is None:
                    raise _WouldWait  # rolls the transaction back: nothing is written
            self._quick_commits += 1
            return start
        except (StoreBusyError, _WouldWait):
            return None
        finally:
            self._lock.release()

    def _request_settings(self) -> _RequestSettings:
        """Credentials, API version, the org id in a session id, the CA file's path and the audit's who,
        worked out once (``env`` does not change, and every step of a request runs with cold caches);
        the CA file is checked each time: the worker needs it too, so a missing file is refused now.

        Raises:
            ConfigError: credentials missing or unusable, or no CA file where SFBACKUP_CA_BUNDLE says.
        """
        settings = self._parsed
        if settings is None:
            credentials = config.credentials_from_env(self.env)
            settings = self._parsed = _RequestSettings(
                credentials=credentials,
                api_version=config.api_version(self.env),
                token_org_id=org_id_from_token(credentials.access_token),
                ca_bundle=config.ca_bundle_named(self.env),
                who=(_os_user(), socket.gethostname(), os.getpid()),
            )
        if settings.ca_bundle is not None:
            config.require_ca_bundle(*settings.ca_bundle)
        return settings

    def _request(
        self,
        options: BackupOptions,
        settings: _RequestSettings,
        org_id: str,
        actor: str,
        tool: str | None,
        correlation_id: str | None,
    ) -> _Request:
        """The ``job.requested`` event, made before the transaction: the write lock is held for less."""
        job_id = new_job_id()
        # Resolved (the home at start), so the worker can tell a symlink put on the way later
        # (options.recheck_backup_directory).
        root = str(Path(options.output_directory)) if options.output_directory else self._backups_text
        directory = f"{root}{os.sep}{org_id}{os.sep}{folder_stamp()}-{job_id}"
        payload = JobRequested(
            job_id=job_id,
            backup_type=options.backup_type,  # type: ignore[arg-type]
            backup_directory=directory,
            org_id=org_id,
            instance_url=settings.credentials.instance_url,
            api_version=settings.api_version,
            **{name: getattr(options, name) for name in _REQUESTED_OPTIONS},  # flat and immutable: no asdict copy
        )
        user, host, pid = settings.who
        metadata: dict[str, Any] = {
            "actor": actor,
            "tool": tool,
            "user": user,
            "host": host,
            "pid": pid,
            "auth": settings.credentials.kind,
        }
        return _Request(payload, encode(payload, metadata=metadata, correlation_id=correlation_id))

    def _record(self, tx: Transaction, request: _Request, *, fold_most: int | None = None) -> BackupStart | None:
        """The request's decision and writes in ``tx``; None, with nothing written, when the full
        backup check would first have to fold more than ``fold_most`` pending events."""
        payload = request.payload
        if payload.backup_type == "full":  # one running full backup per org: decided on current projections
            if fold_most is None:
                self.store.catch_up_in(tx)
            elif self.store.catch_up_in(tx, most=fold_most, most_bytes=QUICK_FOLD_BYTES) is None:
                return None
            running = self.store.find_jobs(
                statuses=tuple(ACTIVE), org_id=payload.org_id, backup_type="full", limit=1, tx=tx
            )
            if running:
                return BackupStart.of(running[0], None, already_running=True)
        # Not synced to disk before the answer (a commit without fsync): a power cut in the next
        # moment loses the request, and with it the worker that would have run it; the worker's
        # first durable commit makes it durable for good.
        [position] = tx.append(job_stream(payload.job_id), [request.event], expected_version=0)
        # A new stream (expected version 0) has no lease yet.
        claimed = leases.claim_if_free(
            tx, payload.job_id, 1, cap=self.settings.max_workers, start_within=WORKER_START_SECONDS, now=time.time()
        )
        # The projections are not folded here: that was a quarter of the request, cold. Starting the
        # worker folds them (``start_worker``), any read does first, and the start's job is the fold of
        # the one event, what they will hold, made only if asked for: no read.
        occurred_at = request.event.occurred_at
        return BackupStart(
            payload.job_id,
            "requested",
            payload.backup_directory,
            1 if claimed else None,
            fold=lambda: requested_status(payload.job_id, position, payload, occurred_at),
        )

    def start_backup(
        self,
        options: BackupOptions,
        *,
        actor: str = "mcp",
        tool: str | None = "salesforce_backup",
        correlation_id: str | None = None,
        spawn: bool = True,
    ) -> JobStatus:
        """``request_backup``, then start its worker (unless ``spawn=False``); returns the job."""
        start = self.request_backup(options, actor=actor, tool=tool, correlation_id=correlation_id)
        if spawn:
            self.start_worker(start)
        return start.job

    def start_worker(self, start: BackupStart) -> None:
        """Start the worker of a job that got a slot; a job that did not get one waits, queued.

        The request left its event unfolded (off its answer's path): it is folded first, so a status
        read finds the projections current instead of catching up itself. A fold that fails is
        logged (a read reports it again) and the worker starts all the same.
        """
        if start.attempt is None:
            return
        try:
            self.catch_up()
        except Exception:
            logger.exception("could not bring the projections up to date for job %s", start.job_id)
        self.spawn_worker(start.job_id, start.attempt)

    def claim_in(self, tx: Transaction, job_id: str, attempt: int) -> int | None:
        """Claim a worker slot for ``attempt`` inside ``tx``; None when the job has one or none is free."""
        now = time.time()
        if leases.get(tx, job_id) is not None or leases.held(tx, now) >= self.settings.max_workers:
            return None
        leases.claim(tx, job_id, attempt, start_within=WORKER_START_SECONDS, now=now)
        return attempt

    def start_queued(self) -> list[str]:
        """Give free worker slots to queued jobs, oldest first, and start their workers."""
        claimed: list[tuple[str, int]] = []
        with self._lock:
            # A cheap look first: servers call this every second, and nearly always nothing waits. It
            # catches up (a stamp check when nothing changed): a request leaves its event unfolded, so
            # a job queued since the last read is in no projection row yet.
            queued = self.store.find_jobs(statuses=("requested",), limit=1000)
            waiting = [j for j in queued if not j.cancel_requested]
            if all(leases.get(self.log, j.job_id) is not None for j in waiting):
                return []
        with self._lock, self.log.write_transaction() as tx:
            self.store.catch_up_in(tx)
            free = self.settings.max_workers - leases.held(tx, time.time())
            if free <= 0:
                return []
            for job in self.store.find_jobs(statuses=("requested",), limit=1000, tx=tx):
                if len(claimed) >= free:
                    break
                if job.cancel_requested:
                    continue
                attempt = self.claim_in(tx, job.job_id, max(1, job.attempt + 1))
                if attempt is not None:
                    claimed.append((job.job_id, attempt))
        for job_id, attempt in claimed:
            self.spawn_worker(job_id, attempt)
        return [job_id for job_id, _ in claimed]

    def spawn_worker(self, job_id: str, attempt: int = 1) -> subprocess.Popen[bytes] | None:
        """Start the worker as its own session, so it outlives the MCP connection and the server.

        A worker that cannot be started fails its job at once (``job.failed``, WORKER_START_FAILED),
        so no job waits for a process that will never come.
        """
        logs = self.home / "logs"
        try:
            logs.mkdir(exist_ok=True, mode=0o700)
            # Owner-only files from their creation: the log here, the backup (umask) in the worker.
            fd = os.open(logs / f"{job_id}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "ab") as stderr:
                proc = subprocess.Popen(
                    self._worker_command(job_id, attempt),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=self.env,
                    start_new_session=True,
                    close_fds=True,
                    umask=0o077,
                )
        except OSError as e:
            logger.error("could not start the worker of job %s: %s", job_id, e)
            self.worker_start_failed(job_id, attempt, f"{type(e).__name__}: {e}")
            return None
        lower_priority(proc.pid)
        with self._lock:
            self._children[(job_id, attempt)] = proc
        # Reap the child when it ends (no zombie lingers), and notice at once if it died early.
        threading.Thread(
            target=self._watch_child, args=(job_id, attempt, proc), name=f"reap-{job_id}", daemon=True
        ).start()
        return proc

    def _worker_command(self, job_id: str, attempt: int) -> list[str]:
        return [sys.executable, "-m", "plugin.jobs.worker", "--home", str(self.home), "--attempt", str(attempt), job_id]

    def _watch_child(self, job_id: str, attempt: int, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            self._children.pop((job_id, attempt), None)
            if self._closed:
                return
            try:
                recovery.child_exited(self, job_id, attempt, code)
            except EventLogError as e:
                logger.warning("could not check job %s after its worker exited: %s", job_id, e)

    def child(self, job_id: str) -> subprocess.Popen[bytes] | None:
        """The live worker process this runtime started for the job, if any."""
        with self._lock:
            for (child_job, _), proc in self._children.items():
                if child_job == job_id and proc.poll() is None:
                    return proc
        return None

    def worker_start_failed(self, job_id: str, attempt: int, why: str) -> None:
        """Record that the worker of ``attempt`` never started; release its slot."""
        with self._lock, self.log.write_transaction() as tx:
            leases.release(tx, job_id, attempt)
            state = read_state(tx, job_id)
            if state is None or not state.active:
                return
            message = (
                f"The worker process for attempt {attempt} could not be started ({why}). Check that the "
                f"sfbackup installation is intact and see {self.home / 'logs' / (job_id + '.log')}; then start "
                "the backup again."
            )
            failed = JobFailed(
                error_code="WORKER_START_FAILED", message=message, retryable=True, attempt=attempt, phase="queued"
            )
            tx.append(
                job_stream(job_id), [system_event(state, failed, actor="runtime")], expected_version=state.version
            )

    # -- cancel and resume (control.py) ---------------------------------------------------------
    def cancel(
        self, job_id: str, *, reason: str | None = None, actor: str = "mcp", correlation_id: str | None = None
    ) -> JobStatus:
        """See ``control.cancel``."""
        return control.cancel(self, job_id, reason=reason, actor=actor, correlation_id=correlation_id)

    def resume(self, job_id: str, *, spawn: bool = True) -> JobStatus:
        """See ``control.resume``."""
        return control.resume(self, job_id, spawn=spawn)

    # -- housekeeping ---------------------------------------------------------------------------
    def housekeeping(self, *, retention: bool = False) -> dict[str, list[str]]:
        """Everything a server does in the background, once: find lost workers, enforce cancels,
        start queued jobs, clean ended ones (and apply the retention policy)."""
        done = {
            "reaped": recovery.reap(self),
            "forced": recovery.enforce_cancels(self),
            "started": self.start_queued(),
            "cleaned": cleanup.cleanup_due(self.log, self.store, self.settings, fresh=True),
        }
        if retention:
            done["retained"] = cleanup.apply_retention(self.log, self.store, self.settings)
        return done
