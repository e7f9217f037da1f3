"""Validating a backup request before anything is recorded: bad input never becomes a job."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from plugin.errors import BackupRequestError
from plugin.salesforce.plan import CONTENT_VERSIONS, invalid_object_names

BACKUP_TYPES = ("full", "incremental", "files_only")
MAX_FILTER = 2000
ALLOWED_OUTPUT_ENV = "SFBACKUP_ALLOWED_OUTPUT"


@dataclass(frozen=True)
class BackupOptions:
    backup_type: str = "full"
    since_date: str | None = None  # normalised: SOQL datetime literal in UTC, e.g. 2024-01-31T00:00:00Z
    objects_filter: tuple[str, ...] = ()
    include_files: bool = True
    include_attachments: bool = True
    include_documents: bool = True
    compression: bool = False
    parallel_downloads: int = 5
    output_directory: str | None = None  # absolute, resolved, inside an allowed root
    content_versions: str = "all"  # all versions of every file, or "latest" (IsLatest) only


def normalise_since(raw: str) -> str:
    """An ISO date or datetime → a SOQL UTC datetime literal; naive datetimes are taken as UTC."""
    text = raw.strip()
    try:
        parsed = (
            date.fromisoformat(text)
            if len(text) == 10
            else datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        )
    except ValueError as e:
        raise BackupRequestError(
            f"since_date={raw!r} is not an ISO date or datetime; use e.g. 2024-01-31 or 2024-01-31T12:00:00Z."
        ) from e
    if isinstance(parsed, datetime):
        moment = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        future = moment > datetime.now(UTC)
        # isoformat, not strftime, which writes the year 999 as "999": no SOQL literal
        literal = f"{moment.replace(tzinfo=None).isoformat(timespec='seconds')}Z"
    else:  # a date: its midnight UTC, in the fewest steps (every step of a request runs with cold caches)
        future = parsed > datetime.now(UTC).date()
        literal = f"{parsed.isoformat()}T00:00:00Z"
    if future:
        raise BackupRequestError(f"since_date={raw!r} is in the future; nothing could have changed since then.")
    return literal


def allowed_output_roots(home: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    roots = [home.resolve()]
    for raw in (env.get(ALLOWED_OUTPUT_ENV) or "").split(os.pathsep):
        if raw.strip():
            roots.append(Path(raw.strip()).expanduser().resolve())
    return roots


def confine_output(raw: str, home: Path, env: Mapping[str, str] | None = None) -> str:
    """Resolve ``output_directory`` (relative to SFBACKUP_HOME) and keep it inside an allowed root.

    Symlinks are resolved before the check, so a link cannot lead a backup outside.
    """
    if not raw.strip() or "\x00" in raw:
        raise BackupRequestError("output_directory is empty or contains a NUL byte.")
    if ".." in Path(raw).parts:
        raise BackupRequestError(f"output_directory={raw!r} contains '..'; give a plain path.")
    try:
        candidate = Path(raw).expanduser()
    except RuntimeError as e:  # "~someone" for a user this machine does not have
        raise BackupRequestError(
            f"output_directory={raw!r} starts with '~' but names no home folder here ({e}); give the full path."
        ) from e
    if not candidate.is_absolute():
        candidate = home / candidate
    resolved = candidate.resolve()
    roots = allowed_output_roots(home, env)
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise BackupRequestError(
            f"output_directory={raw!r} resolves to {resolved}, outside the allowed folders "
            f"({', '.join(str(r) for r in roots)}). Choose a folder inside SFBACKUP_HOME, or add the "
            f"parent folder to {ALLOWED_OUTPUT_ENV} in the server's environment."
        )
    if resolved.exists() and not resolved.is_dir():
        raise BackupRequestError(f"output_directory={raw!r} exists and is not a folder.")
    return str(resolved)


def recheck_backup_directory(raw: str) -> Path:
    """The worker's check of the folder the request validated: still no symlink on its way.

    The request resolved every link when it was made; a link put into the path since (between
    request and run) would redirect the backup, so the worker refuses it.

    Raises:
        BackupRequestError: the path now leads somewhere else.
    """
    path = Path(raw)
    if not path.is_absolute() or ".." in path.parts or path.parent.resolve() != path.parent:
        raise BackupRequestError(
            f"The backup folder {raw} now resolves to {path.parent.resolve() / path.name} (a symlink on the way "
            "was added after the request). Remove the link, or start a new backup with another output_directory."
        )
    return path


def validate_request(
    *,
    home: Path,
    backup_type: Any = "full",
    since_date: Any = None,
    objects_filter: Any = None,
    include_files: Any = True,
    include_attachments: Any = True,
    include_documents: Any = True,
    compression: Any = False,
    parallel_downloads: Any = 5,
    output_directory: Any = None,
    content_versions: Any = "all",
    env: Mapping[str, str] | None = None,
) -> BackupOptions:
    """Check and normalise every argument of ``salesforce_backup``.

    Raises:
        BackupRequestError: with a message naming the argument and what to pass instead.
    """
    if backup_type not in BACKUP_TYPES:
        raise BackupRequestError(f"backup_type={backup_type!r} is not one of {', '.join(BACKUP_TYPES)}.")
    for name, value in (
        ("include_files", include_files),
        ("include_attachments", include_attachments),
        ("include_documents", include_documents),
        ("compression", compression),
    ):
        if not isinstance(value, bool):
            raise BackupRequestError(f"{name} must be true or false, got {value!r}.")
    if (
        isinstance(parallel_downloads, bool)
        or not isinstance(parallel_downloads, int)
        or not (1 <= parallel_downloads <= 10)
    ):
        raise BackupRequestError(f"parallel_downloads={parallel_downloads!r} must be a whole number from 1 to 10.")
    if content_versions not in CONTENT_VERSIONS:
        raise BackupRequestError(
            f"content_versions={content_versions!r} is not one of {', '.join(CONTENT_VERSIONS)} "
            "(all: every version of every file; latest: only the current version)."
        )
    since = None
    if since_date is not None and since_date != "":
        if not isinstance(since_date, str):
            raise BackupRequestError("since_date must be an ISO date string such as 2024-01-31.")
        since = normalise_since(since_date)
        if backup_type == "full":
            raise BackupRequestError(
                "since_date applies to incremental and files_only backups; a full backup exports every row. "
                'Pass backup_type="incremental" to back up changes since that date, or leave since_date out.'
            )
    names: Sequence[Any] = objects_filter or ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list | tuple):
        raise BackupRequestError('objects_filter must be a list of sObject API names, e.g. ["Account"].')
    if len(names) > MAX_FILTER:
        raise BackupRequestError(f"objects_filter has {len(names)} names; at most {MAX_FILTER} are accepted.")
    bad = invalid_object_names(names)
    if bad:
        shown = ", ".join(repr(b)[:60] for b in bad[:5])
        raise BackupRequestError(
            f"objects_filter holds names that are not sObject API names: {shown}. "
            "Use names like Account or Invoice__c (letters, digits, underscores)."
        )
    output = None
    if output_directory is not None and output_directory != "":
        if not isinstance(output_directory, str):
            raise BackupRequestError("output_directory must be a folder path string.")
        output = confine_output(output_directory, home, env)
    if content_versions == "latest" and not include_files:
        raise BackupRequestError(
            'content_versions="latest" picks which ContentVersion files to back up, but include_files is false; '
            "enable include_files or leave content_versions out."
        )
    if backup_type == "files_only" and not (include_files or include_attachments or include_documents):
        raise BackupRequestError(
            "backup_type=files_only with include_files, include_attachments and include_documents all false "
            "would back up nothing; enable at least one."
        )
    return BackupOptions(
        backup_type=backup_type,
        since_date=since,
        objects_filter=tuple(dict.fromkeys(names)),
        include_files=include_files,
        include_attachments=include_attachments,
        include_documents=include_documents,
        compression=compression,
        parallel_downloads=parallel_downloads,
        output_directory=output,
        content_versions=content_versions,
    )
