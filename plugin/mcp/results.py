"""The structured answers of the tools (their outputSchema) and their readable text."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from events import RecordedEvent
from plugin.jobs.state import folder_text
from projections import BackupEntry, JobStatus


def job_uri(job_id: str) -> str:
    return f"backup://jobs/{job_id}"


class Answer(BaseModel):
    """Base of every result model: its JSON schema is written for cheap validation by clients.

    The Python MCP client validates every structured result against the tool's outputSchema with
    ``jsonschema``, whose cost grows with every subschema it descends into; the published schema
    accepts exactly the same documents as pydantic's, in the form that validates fastest:

    - an optional scalar is ``{"type": ["string", "null"]}``, not ``anyOf`` of two branches;
    - a nested result model is inlined (``{"type": ["object", "null"], "properties": ...}``) instead of a
      ``$ref`` into ``$defs`` that is resolved again for each value, and an optional one is not an
      ``anyOf`` whose failing branch builds a ``ValidationError`` for every null.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name, prop in properties.items():
            properties[name] = _lean(prop, handler)
        return schema


def _lean(prop: dict[str, Any], handler: GetJsonSchemaHandler) -> dict[str, Any]:
    """One property's schema with its nested models inlined and a nullable one as a type list."""
    branches = prop.get("anyOf")
    if branches and len(branches) == 2 and {"type": "null"} in branches:
        other = _inlined(next(b for b in branches if b != {"type": "null"}), handler)
        kind = other.get("type")
        if isinstance(kind, str) and (set(other) == {"type"} or kind == "object"):
            rest = {k: v for k, v in prop.items() if k != "anyOf"}
            return {**other, **rest, "type": [kind, "null"]}
        return prop
    lean = _inlined(prop, handler)
    if isinstance(lean.get("items"), dict):
        lean = {**lean, "items": _inlined(lean["items"], handler)}
    return lean


def _inlined(schema: dict[str, Any], handler: GetJsonSchemaHandler) -> dict[str, Any]:
    if "$ref" not in schema:
        return schema
    target = copy.deepcopy(handler.resolve_ref_schema({"$ref": schema["$ref"]}))
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


class JobError(Answer):
    code: str | None = None
    message: str | None = None
    retryable: bool = False


class JobView(Answer):
    """One job as the status projection sees it."""

    job_id: str
    status: str = Field(description="requested | running | completed | failed | cancelled | interrupted")
    phase: str | None = None
    backup_type: str | None = None
    org_id: str | None = None
    instance_url: str | None = None
    percent: int = 0
    objects_done: int = 0
    objects_total: int = 0
    current_object: str | None = None
    records: int = 0
    files: int = 0
    files_total: int | None = Field(
        default=None, description="file bodies to fetch (known once downloading starts); files counts those fetched"
    )
    bytes: int = 0
    skipped: int = 0
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    backup_directory: str | None = None
    error: JobError | None = None
    attempt: int = 1
    cancel_requested: bool = False
    cleaned: bool = False
    resource_uri: str

    @classmethod
    def of(cls, job: JobStatus) -> JobView:
        data: dict[str, Any] = dict(job.to_dict())
        error = data.get("error")
        data["error"] = JobError(**error) if isinstance(error, dict) else None
        data["resource_uri"] = job_uri(job.job_id)
        fields = set(cls.model_fields)
        return cls(**{k: v for k, v in data.items() if k in fields})

    def text(self) -> str:
        line = f"Job {self.job_id}: {self.status}"
        if self.phase and self.status in ("requested", "running"):
            line += f" ({self.phase}, {self.percent}%"
            line += f", {self.current_object})" if self.current_object else ")"
        show_total = self.files_total is not None and self.status in ("requested", "running")
        files = f"{self.files}/{self.files_total}" if show_total else f"{self.files}"
        line += (
            f"; {self.objects_done}/{self.objects_total} objects, {self.records} records, "
            f"{files} files, {self.bytes} bytes"
        )
        if self.backup_directory:
            line += f"; folder {folder_text(self.backup_directory, status=self.status, cleaned=self.cleaned)}"
        if self.error and self.error.message:
            line += f"\nError {self.error.code}: {self.error.message}"
            line += " (retryable: start the backup again)" if self.error.retryable else ""
        if self.cancel_requested and self.status in ("requested", "running"):
            line += "\nCancel requested: the worker stops at its next safe point."
        if self.status == "interrupted":
            line += (
                f"\nThe worker of attempt {self.attempt} was lost. Resume it with "
                f'salesforce_backup_resume(job_id="{self.job_id}"), or cancel it.'
            )
        return line


class JobSummary(Answer):
    """One job in a page of jobs: what a listing needs; ``salesforce_backup_status(job_id)`` has the rest.

    Fewer fields than ``JobView`` because clients validate every field of every job on the page.
    """

    job_id: str
    status: str = Field(description="requested | running | completed | failed | cancelled | interrupted")
    phase: str | None = None
    backup_type: str | None = None
    org_id: str | None = None
    percent: int = 0
    records: int = 0
    files: int = 0
    bytes: int = 0
    requested_at: str | None = None
    finished_at: str | None = None
    backup_directory: str | None = None
    error: JobError | None = None
    resource_uri: str

    @classmethod
    def of(cls, job: JobStatus) -> JobSummary:
        error = job.error
        return cls(
            job_id=job.job_id,
            status=job.status,
            phase=job.phase,
            backup_type=job.backup_type,
            org_id=job.org_id,
            percent=job.percent,
            records=job.records,
            files=job.files,
            bytes=job.bytes,
            requested_at=job.requested_at,
            finished_at=job.finished_at,
            backup_directory=job.backup_directory,
            error=None
            if error is None
            else JobError(code=error.code, message=error.message, retryable=error.retryable),
            resource_uri=job_uri(job.job_id),
        )

    def text(self) -> str:
        line = f"Job {self.job_id}: {self.status}"
        if self.phase and self.status in ("requested", "running"):
            line += f" ({self.phase}, {self.percent}%)"
        line += f", {self.backup_type}" if self.backup_type else ""
        line += f"; {self.records} records, {self.files} files, {self.bytes} bytes"
        if self.backup_directory:
            line += f"; folder {folder_text(self.backup_directory, status=self.status, cleaned=False)}"
        if self.error and self.error.message:
            line += f"\nError {self.error.code}: {self.error.message}"
        return line


class StartResult(Answer):
    job_id: str
    status: str
    backup_directory: str
    resource_uri: str
    message: str
    already_running: bool = Field(
        default=False, description="a full backup of this org was already running: this is that job, none was added"
    )
    queued: bool = Field(default=False, description="every worker slot is busy: the job starts when one frees")

    def text(self) -> str:
        return self.message


class StatusResult(Answer):
    """One job in full (``job``), or a page of jobs newest first (``jobs``, each a summary)."""

    job: JobView | None = None
    jobs: list[JobSummary] = Field(default_factory=list)
    total: int = 0
    offset: int = 0
    limit: int = 0
    next_offset: int | None = None

    def text(self) -> str:
        if self.job is not None:
            return self.job.text()
        if not self.jobs:
            return "No backup jobs yet. Start one with salesforce_backup."
        head = (
            f"{self.total} job(s); showing {self.offset + 1}-{self.offset + len(self.jobs)} newest first "
            '(details of one: salesforce_backup_status(job_id="...")).'
        )
        tail = f"\nMore: call again with offset={self.next_offset}." if self.next_offset is not None else ""
        return head + "\n" + "\n".join(j.text() for j in self.jobs) + tail


class BackupView(Answer):
    job_id: str
    org_id: str | None = None
    instance_url: str | None = None
    backup_type: str | None = None
    backup_directory: str | None = None
    finished_at: str | None = None
    objects: int = 0
    records: int = 0
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    manifest_sha256: str | None = None
    cleaned: bool = False
    resource_uri: str

    @classmethod
    def of(cls, entry: BackupEntry) -> BackupView:
        data: dict[str, Any] = dict(entry.to_dict())
        data["resource_uri"] = job_uri(entry.job_id)
        fields = set(cls.model_fields)
        return cls(**{k: v for k, v in data.items() if k in fields})

    def text(self) -> str:
        return (
            f"{self.finished_at} {self.backup_type} backup of {self.org_id}: {self.objects} objects, "
            f"{self.records} records, {self.files} files, {self.bytes} bytes -> {self.backup_directory}"
        )


class BackupListResult(Answer):
    backups: list[BackupView] = Field(default_factory=list)
    total: int = 0
    offset: int = 0
    limit: int = 0
    next_offset: int | None = None

    def text(self) -> str:
        if not self.backups:
            return "No finished backups yet."
        head = f"{self.total} finished backup(s), newest first:"
        tail = f"\nMore: call again with offset={self.next_offset}." if self.next_offset is not None else ""
        return head + "\n" + "\n".join(b.text() for b in self.backups) + tail


def next_offset(offset: int, shown: int, total: int) -> int | None:
    return offset + shown if offset + shown < total else None


class CancelResult(Answer):
    job: JobView
    message: str

    def text(self) -> str:
        return self.message + "\n" + self.job.text()


class EventView(Answer):
    """One stored event, as ``sfbackup events --json`` prints it."""

    position: int
    event_id: str
    type: str
    stream: str
    version: int
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None
    time: str
    recorded_at: str
    hash: str

    @classmethod
    def of(cls, event: RecordedEvent) -> EventView:
        return cls(
            position=event.position,
            event_id=event.event_id,
            type=event.type,
            stream=event.stream_id,
            version=event.stream_version,
            schema_version=event.schema_version,
            data=dict(event.data),
            metadata=dict(event.metadata),
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            time=event.occurred_at,
            recorded_at=event.recorded_at,
            hash=event.hash,
        )

    def text(self) -> str:
        return f"{self.position:>6} {self.time} {self.stream} v{self.version} {self.type}"


class ChainView(Answer):
    ok: bool
    verified_through: int = Field(description="the hash chain is intact from position 1 to here")
    checked: int = Field(description="events hashed by this call (earlier ones were verified before)")
    first_bad_position: int | None = None
    problem: str | None = None


class EventsResult(Answer):
    events: list[EventView] = Field(default_factory=list)
    next_after: int | None = Field(default=None, description="pass as after= for the next page; null: no more")
    chain: ChainView

    def text(self) -> str:
        if self.chain.ok:
            head = f"Hash chain intact through position {self.chain.verified_through}."
        else:
            head = (
                f"HASH CHAIN BROKEN at position {self.chain.first_bad_position}: {self.chain.problem}. "
                "Run `sfbackup verify` and restore the log from a backup."
            )
        body = "\n".join(e.text() for e in self.events) if self.events else "No events in this range."
        tail = f"\nMore: call again with after={self.next_after}." if self.next_after is not None else ""
        return f"{head}\n{body}{tail}"
