"""The event vocabulary: one frozen payload class per event type, at its current schema version.

Each class has ``TYPE`` and ``SCHEMA_VERSION`` constants and converts to and from the JSON-safe dict
stored in ``events.data``; older stored versions reach ``from_data`` through the upcasters in
``events/upcasters.py``. ``REGISTRY`` is the list of known types that ``append`` validates against
(a registry in code, not a CHECK list: changing a CHECK needs a table rebuild).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self, TypeAlias

from events.errors import InvalidEventError, UnknownEventTypeError

BackupType: TypeAlias = Literal["full", "incremental", "files_only"]
BACKUP_TYPES: tuple[BackupType, ...] = ("full", "incremental", "files_only")
ContentVersions: TypeAlias = Literal["all", "latest"]
CONTENT_VERSIONS: tuple[ContentVersions, ...] = ("all", "latest")

_MISSING: Any = object()


def _get(data: Mapping[str, Any], key: str, kinds: tuple[type, ...], default: Any, *, nullable: bool) -> Any:
    value = data.get(key, default)
    if value is _MISSING:
        raise InvalidEventError(f"payload field {key!r} is missing")
    if value is None and nullable:
        return None
    # bool is an int subclass; a JSON true must not pass for a count.
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidEventError(f"payload field {key!r} must be {kinds[0].__name__}, got bool")
    if not isinstance(value, kinds):
        raise InvalidEventError(f"payload field {key!r} must be {kinds[0].__name__}, got {type(value).__name__}")
    return value


# Each helper returns at once for the exact expected type (the common case, and most of a
# projection rebuild's time) and leaves everything else to ``_get``.


def _str(data: Mapping[str, Any], key: str, default: Any = _MISSING) -> str:
    value = data.get(key, default)
    if type(value) is str:
        return value
    return str(_get(data, key, (str,), default, nullable=False))


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or type(value) is str:
        return value
    value = _get(data, key, (str,), None, nullable=True)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str, default: Any = _MISSING) -> int:
    value = data.get(key, default)
    if type(value) is int:
        return value
    return int(_get(data, key, (int,), default, nullable=False))


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None or type(value) is int:
        return value
    value = _get(data, key, (int,), None, nullable=True)
    return None if value is None else int(value)


def _bool(data: Mapping[str, Any], key: str, default: Any = _MISSING) -> bool:
    value = data.get(key, default)
    if type(value) is bool:
        return value
    return bool(_get(data, key, (bool,), default, nullable=False))


def _float(data: Mapping[str, Any], key: str, default: Any = _MISSING) -> float:
    value = data.get(key, default)
    if type(value) is float:
        return value
    return float(_get(data, key, (float, int), default, nullable=False))


def _str_tuple(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _get(data, key, (list, tuple), (), nullable=True) or ()
    if not all(isinstance(item, str) for item in items):
        raise InvalidEventError(f"payload field {key!r} must be a list of strings")
    return tuple(items)


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidEventError(f"payload field {key!r} must be an object")
    return value


class Payload(Protocol):
    """What every payload class offers; the codec works on this protocol."""

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]

    def to_data(self) -> dict[str, Any]: ...

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self: ...


@dataclass(frozen=True)
class SkippedObject:
    """An object the plan left out, and why (no query access, not replicable, filtered out ...)."""

    object: str
    reason: str

    def to_data(self) -> dict[str, Any]:
        return {"object": self.object, "reason": self.reason}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(object=_str(data, "object"), reason=_str(data, "reason", ""))


ObjectOutcome: TypeAlias = Literal["exported", "skipped", "failed"]
OBJECT_OUTCOMES: tuple[ObjectOutcome, ...] = ("exported", "skipped", "failed")


@dataclass(frozen=True)
class ObjectFinished:
    """One object done: exported (record count, sha256 of its CSV, REST or Bulk), or skipped or
    failed at query time, with Salesforce's reason (job.progress v3 added status/reason/method)."""

    object: str
    records: int = 0
    sha256: str | None = None
    status: ObjectOutcome = "exported"
    reason: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if self.status not in OBJECT_OUTCOMES:
            raise InvalidEventError(f"object_finished.status must be one of {OBJECT_OUTCOMES}, got {self.status!r}")

    def to_data(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "records": self.records,
            "sha256": self.sha256,
            "status": self.status,
            "reason": self.reason,
            "method": self.method,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            object=_str(data, "object"),
            records=_int(data, "records", 0),
            sha256=_opt_str(data, "sha256"),
            status=_str(data, "status", "exported"),  # type: ignore[arg-type]  # checked in __post_init__
            reason=_opt_str(data, "reason"),
            method=_opt_str(data, "method"),
        )


@dataclass(frozen=True)
class JobRequested:
    """A backup was asked for; appended by the tool in the transaction that creates the stream."""

    TYPE: ClassVar[str] = "job.requested"
    SCHEMA_VERSION: ClassVar[int] = 2  # v2: content_versions

    job_id: str
    backup_type: BackupType = "full"
    since_date: str | None = None
    objects_filter: tuple[str, ...] = ()
    include_files: bool = True
    include_attachments: bool = True
    include_documents: bool = True
    compression: bool = False
    parallel_downloads: int = 5
    output_directory: str | None = None
    backup_directory: str | None = None
    org_id: str | None = None
    instance_url: str | None = None
    api_version: str | None = None
    content_versions: ContentVersions = "all"

    def __post_init__(self) -> None:
        if self.backup_type not in BACKUP_TYPES:
            raise InvalidEventError(f"backup_type must be one of {BACKUP_TYPES}, got {self.backup_type!r}")
        if self.content_versions not in CONTENT_VERSIONS:
            raise InvalidEventError(
                f"content_versions must be one of {CONTENT_VERSIONS}, got {self.content_versions!r}"
            )

    def to_data(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "backup_type": self.backup_type,
            "since_date": self.since_date,
            "objects_filter": list(self.objects_filter),
            "include_files": self.include_files,
            "include_attachments": self.include_attachments,
            "include_documents": self.include_documents,
            "compression": self.compression,
            "parallel_downloads": self.parallel_downloads,
            "output_directory": self.output_directory,
            "backup_directory": self.backup_directory,
            "org_id": self.org_id,
            "instance_url": self.instance_url,
            "api_version": self.api_version,
            "content_versions": self.content_versions,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            job_id=_str(data, "job_id"),
            backup_type=_str(data, "backup_type", "full"),  # type: ignore[arg-type]  # checked in __post_init__
            since_date=_opt_str(data, "since_date"),
            objects_filter=_str_tuple(data, "objects_filter"),
            include_files=_bool(data, "include_files", True),
            include_attachments=_bool(data, "include_attachments", True),
            include_documents=_bool(data, "include_documents", True),
            compression=_bool(data, "compression", False),
            parallel_downloads=_int(data, "parallel_downloads", 5),
            output_directory=_opt_str(data, "output_directory"),
            backup_directory=_opt_str(data, "backup_directory"),
            org_id=_opt_str(data, "org_id"),
            instance_url=_opt_str(data, "instance_url"),
            api_version=_opt_str(data, "api_version"),
            content_versions=_str(data, "content_versions", "all"),  # type: ignore[arg-type]  # checked in __post_init__
        )


@dataclass(frozen=True)
class JobStarted:
    """A worker claimed the job (attempt n) and planned it."""

    TYPE: ClassVar[str] = "job.started"
    SCHEMA_VERSION: ClassVar[int] = 1

    attempt: int = 1
    worker_id: str | None = None
    pid: int | None = None
    org_id: str | None = None
    instance_url: str | None = None
    api_version: str | None = None
    objects_total: int = 0
    objects: tuple[str, ...] = ()
    skipped: tuple[SkippedObject, ...] = ()
    partial_directory: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "worker_id": self.worker_id,
            "pid": self.pid,
            "org_id": self.org_id,
            "instance_url": self.instance_url,
            "api_version": self.api_version,
            "objects_total": self.objects_total,
            "objects": list(self.objects),
            "skipped": [item.to_data() for item in self.skipped],
            "partial_directory": self.partial_directory,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        skipped = _get(data, "skipped", (list, tuple), (), nullable=True) or ()
        return cls(
            attempt=_int(data, "attempt", 1),
            worker_id=_opt_str(data, "worker_id"),
            pid=_opt_int(data, "pid"),
            org_id=_opt_str(data, "org_id"),
            instance_url=_opt_str(data, "instance_url"),
            api_version=_opt_str(data, "api_version"),
            objects_total=_int(data, "objects_total", 0),
            objects=_str_tuple(data, "objects"),
            skipped=tuple(SkippedObject.from_data(_mapping(item, "skipped")) for item in skipped),
            partial_directory=_opt_str(data, "partial_directory"),
        )


@dataclass(frozen=True)
class JobProgress:
    """Where the worker is: per object finished, and at most about once a second in between.

    Version 2 added ``files_total``: how many file bodies the backup fetches, known from the start
    of the downloading phase (None before, and in version 1 events), so the status can say "40 of
    80 files" instead of a bare count. ``files`` counts bodies fetched; a record whose body is gone
    (recycle bin) is planned but never counted, and the manifest's warnings name it.
    Version 3 added ``object_finished.status`` (exported, skipped, failed), ``reason`` and
    ``method`` (rest, bulk): objects Salesforce refuses at query time are skipped with its reason.
    """

    TYPE: ClassVar[str] = "job.progress"
    SCHEMA_VERSION: ClassVar[int] = 3

    phase: str = "exporting"
    objects_done: int = 0
    objects_total: int = 0
    current_object: str | None = None
    records: int = 0
    files: int = 0
    bytes: int = 0
    percent: int = 0
    object_finished: ObjectFinished | None = None
    files_total: int | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "objects_done": self.objects_done,
            "objects_total": self.objects_total,
            "current_object": self.current_object,
            "records": self.records,
            "files": self.files,
            "files_total": self.files_total,
            "bytes": self.bytes,
            "percent": self.percent,
            "object_finished": None if self.object_finished is None else self.object_finished.to_data(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        # Most events are progress events and a rebuild spends much of its time here. When the
        # data holds exactly the ten fields (as to_data writes them), each of its exact type and
        # no object finished, its values are the fields (what the general path below returns
        # too), and it becomes the payload's dict in one step.
        try:
            if (
                len(data) == 10
                and data["object_finished"] is None
                and (data["files_total"] is None or type(data["files_total"]) is int)
                and type(data["phase"]) is str
                and type(data["objects_done"]) is int
                and type(data["objects_total"]) is int
                and (data["current_object"] is None or type(data["current_object"]) is str)
                and type(data["records"]) is int
                and type(data["files"]) is int
                and type(data["bytes"]) is int
                and type(data["percent"]) is int
            ):
                payload = object.__new__(cls)
                payload.__dict__.update(data)
                return payload
        except KeyError:
            pass  # a field is missing: the general path fills in its default
        finished = data.get("object_finished")
        return cls(
            phase=_str(data, "phase", "exporting"),
            objects_done=_int(data, "objects_done", 0),
            objects_total=_int(data, "objects_total", 0),
            current_object=_opt_str(data, "current_object"),
            records=_int(data, "records", 0),
            files=_int(data, "files", 0),
            files_total=_opt_int(data, "files_total"),
            bytes=_int(data, "bytes", 0),
            percent=_int(data, "percent", 0),
            object_finished=None
            if finished is None
            else ObjectFinished.from_data(_mapping(finished, "object_finished")),
        )


@dataclass(frozen=True)
class JobFailed:
    """The attempt ended in an error; ``retryable`` says whether trying again can help."""

    TYPE: ClassVar[str] = "job.failed"
    SCHEMA_VERSION: ClassVar[int] = 1

    error_code: str
    message: str
    retryable: bool = False
    attempt: int = 1
    phase: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "retryable": self.retryable,
            "attempt": self.attempt,
            "phase": self.phase,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            error_code=_str(data, "error_code"),
            message=_str(data, "message", ""),
            retryable=_bool(data, "retryable", False),
            attempt=_int(data, "attempt", 1),
            phase=_opt_str(data, "phase"),
        )


@dataclass(frozen=True)
class JobCompleted:
    """The backup folder is complete and its manifest written (summary of the manifest)."""

    TYPE: ClassVar[str] = "job.completed"
    SCHEMA_VERSION: ClassVar[int] = 1

    backup_directory: str
    manifest_sha256: str | None = None
    objects: int = 0
    records: int = 0
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    duration_seconds: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return {
            "backup_directory": self.backup_directory,
            "manifest_sha256": self.manifest_sha256,
            "objects": self.objects,
            "records": self.records,
            "files": self.files,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "duration_seconds": self.duration_seconds,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            backup_directory=_str(data, "backup_directory"),
            manifest_sha256=_opt_str(data, "manifest_sha256"),
            objects=_int(data, "objects", 0),
            records=_int(data, "records", 0),
            files=_int(data, "files", 0),
            bytes=_int(data, "bytes", 0),
            skipped=_int(data, "skipped", 0),
            duration_seconds=_float(data, "duration_seconds", 0.0),
        )


@dataclass(frozen=True)
class JobCleaned:
    """Cleanup ran after the job ended: temp files and leases went. History stays."""

    TYPE: ClassVar[str] = "job.cleaned"
    SCHEMA_VERSION: ClassVar[int] = 1

    removed: tuple[str, ...] = ()
    reason: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"removed": list(self.removed), "reason": self.reason}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(removed=_str_tuple(data, "removed"), reason=_opt_str(data, "reason"))


@dataclass(frozen=True)
class JobCancelRequested:
    """Someone asked the job to stop; the worker stops at a safe point."""

    TYPE: ClassVar[str] = "job.cancel_requested"
    SCHEMA_VERSION: ClassVar[int] = 1

    reason: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"reason": self.reason}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(reason=_opt_str(data, "reason"))


@dataclass(frozen=True)
class JobCancelled:
    """The job stopped on request; ``forced`` when the worker had to be killed."""

    TYPE: ClassVar[str] = "job.cancelled"
    SCHEMA_VERSION: ClassVar[int] = 1

    forced: bool = False

    def to_data(self) -> dict[str, Any]:
        return {"forced": self.forced}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(forced=_bool(data, "forced", False))


@dataclass(frozen=True)
class JobInterrupted:
    """The worker vanished without a terminal event (crash, reboot); the job can be resumed."""

    TYPE: ClassVar[str] = "job.interrupted"
    SCHEMA_VERSION: ClassVar[int] = 1

    reason: str | None = None
    attempt: int = 1

    def to_data(self) -> dict[str, Any]:
        return {"reason": self.reason, "attempt": self.attempt}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(reason=_opt_str(data, "reason"), attempt=_int(data, "attempt", 1))


EventPayload: TypeAlias = (
    JobRequested
    | JobStarted
    | JobProgress
    | JobFailed
    | JobCompleted
    | JobCleaned
    | JobCancelRequested
    | JobCancelled
    | JobInterrupted
)

PAYLOAD_CLASSES: tuple[type[EventPayload], ...] = (
    JobRequested,
    JobStarted,
    JobProgress,
    JobFailed,
    JobCompleted,
    JobCleaned,
    JobCancelRequested,
    JobCancelled,
    JobInterrupted,
)

REGISTRY: Mapping[str, type[EventPayload]] = {cls.TYPE: cls for cls in PAYLOAD_CLASSES}

# What a user acts on ("backup completed", "it failed, resume it"): a transaction that records one is
# synced to disk before it returns (synchronous=FULL), so it survives a power cut; the others need
# only survive the process (see EventLog.write_transaction).
OUTCOME_TYPES: frozenset[str] = frozenset(
    cls.TYPE for cls in (JobCompleted, JobFailed, JobCancelled, JobInterrupted, JobCleaned)
)


def holds_outcome(event_types: Iterable[str]) -> bool:
    """Whether a batch of these types must be synced to disk (``write_transaction(durable=...)``)."""
    return not OUTCOME_TYPES.isdisjoint(event_types)


def require_known(event_type: str) -> type[EventPayload]:
    """Return the payload class of a type.

    Raises:
        UnknownEventTypeError: the type is not registered.
    """
    try:
        return REGISTRY[event_type]
    except KeyError:
        raise UnknownEventTypeError(event_type) from None
