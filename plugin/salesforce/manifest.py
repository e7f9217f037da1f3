"""``manifest.json``: what a backup holds, written last and atomically (a folder without it is
not a backup)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
PARTIAL_SUFFIX = ".partial"


def partial_directory(final: str | Path) -> Path:
    """The folder a backup is written in until its manifest makes it complete (then renamed)."""
    final = Path(final)
    return final.with_name(final.name + PARTIAL_SUFFIX)


def write_manifest(path: Path, manifest: dict[str, Any]) -> str:
    """Write ``manifest`` via a temp file + rename; returns the sha256 of the bytes written."""
    data = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def publish(partial: Path, final: Path) -> None:
    """Rename a complete ``.partial`` folder to its final name: what makes it a backup. Its entries
    are synced before the rename, and the rename itself after."""
    _fsync_dir(partial)
    os.rename(partial, final)
    _fsync_dir(final.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST_NAME
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None
