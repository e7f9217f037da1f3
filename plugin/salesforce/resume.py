"""Resuming an interrupted export in its ``.partial`` folder: what is finished already.

A finished object leaves three traces, written in this order: its CSV in ``data/`` (closed and
fsynced), its manifest entry in ``.sfbackup/objects/<Object>.json``, and its ``object_finished``
progress event (records, sha256). A resumed export reuses an object only when all three agree and
the CSV's sha256, computed again, is the one recorded; every other object is exported again. The
``.sfbackup`` folder is removed before the backup folder gets its final name.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from events.vocabulary import JobProgress, JobStarted
from plugin.salesforce.csvout import sha256_file
from plugin.salesforce.literal import NumberLiteral

STATE_DIR = ".sfbackup"
NUMBER_TYPES = frozenset({"int", "long", "double", "currency", "percent"})


@dataclass(frozen=True)
class FinishedObject:
    records: int
    sha256: str


@dataclass(frozen=True)
class ResumePoint:
    """Where a new attempt starts: its number and the objects earlier attempts finished."""

    attempt: int
    finished: Mapping[str, FinishedObject] = field(default_factory=dict)


def resume_point(payloads: Iterable[Any]) -> ResumePoint:
    """The resume point of a job from its decoded events (``events.codec.decode`` of its stream).

    The latest word on an object wins: exported (with a checksum) makes it reusable, skipped or
    failed makes it pending again.
    """
    attempt = 0
    finished: dict[str, FinishedObject] = {}
    for payload in payloads:
        if isinstance(payload, JobStarted):
            attempt = max(attempt, payload.attempt)
        elif isinstance(payload, JobProgress) and payload.object_finished is not None:
            done = payload.object_finished
            if done.status == "exported" and done.sha256:
                finished[done.object] = FinishedObject(done.records, done.sha256)
            else:
                finished.pop(done.object, None)
    return ResumePoint(attempt + 1, finished)


def _entry_path(partial_dir: Path, name: str) -> Path:
    return partial_dir / STATE_DIR / "objects" / f"{name}.json"


def save_entry(partial_dir: Path, name: str, entry: Mapping[str, Any]) -> None:
    """Keep a finished object's manifest entry for a later resume (after its CSV is on disk)."""
    path = _entry_path(partial_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def reusable_entry(partial_dir: Path, name: str, finished: FinishedObject | None) -> dict[str, Any] | None:
    """The saved entry of ``name`` when its CSV and describe are there and the checksums agree."""
    if finished is None:
        return None
    try:
        entry = json.loads(_entry_path(partial_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("sha256") != finished.sha256:
        return None
    if entry.get("records") != finished.records or not isinstance(entry.get("file"), str):
        return None
    csv_path = partial_dir / entry["file"]
    if not csv_path.is_file() or not (partial_dir / "describe" / f"{name}.json").is_file():
        return None
    if sha256_file(csv_path) != finished.sha256:
        return None
    return entry


def drop_state(partial_dir: Path) -> None:
    """Remove what only a resume needs; the backup folder holds exactly the documented layout."""
    shutil.rmtree(partial_dir / STATE_DIR, ignore_errors=True)


def records_from_csv(path: Path, describe: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of an exported CSV as records (empty cell -> None, booleans as bools, numbers as
    their literal text), for work that follows the export (file bodies), fresh or resumed alike."""
    types = {str(f.get("name")): f.get("type") for f in describe.get("fields", []) if isinstance(f, Mapping)}
    opener: Any = gzip.open if path.suffix == ".gz" else open
    fh: IO[str]
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        header = next(reader, None) or []
        kinds = [types.get(name) for name in header]
        for row in reader:
            record: dict[str, Any] = {}
            for name, kind, cell in zip(header, kinds, row, strict=True):
                if cell == "":
                    record[name] = None
                elif kind == "boolean":
                    record[name] = cell == "true"
                elif kind in NUMBER_TYPES:
                    record[name] = NumberLiteral(cell)
                else:
                    record[name] = cell
            yield record
