"""Rendered answers kept on disk (org.json "response_cache": DIR), so that a benchmark measures its
clients and not the fake's row generation and JSON/CSV rendering, which cost far more CPU than a
client spends reading the same bytes.

Only bodies that are a pure function of the loaded org and the request are kept: the records of a
REST query page (by API version, SOQL, query/queryAll, page size and offset; the page's
`totalSize`, `done` and `nextRecordsUrl` around them are made per request, so locators stay the
server's own) and Bulk API 2.0 results pages (by the job's API version, operation, SOQL, delimiter,
line ending and row range). Everything else a request does (session check, accounting, fault
rules, the request log) happens as without the cache; cached bytes are the bytes the fake would
render. Files live under DIR/<fingerprint>/, the fingerprint hashing the org folder's settings,
describes and records and the fake's own source, so several fake processes can share DIR (a
warm-up may run in parallel processes) and a changed org or fake never reads another's pages.
A body is written to a temporary file as it is sent and kept only once complete (a dropped
connection leaves nothing behind). Off by default; the files are never removed by the fake.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import FakeOrgError

SETTING = "response_cache"
_READ_CHUNK = 1 << 20
_SOURCES = Path(__file__).resolve().parent

Key = tuple[str | int | bool, ...]


def fingerprint(root: Path, settings: Mapping[str, Any]) -> str:
    """A hash of everything a cached body depends on: org.json (less this setting), the describe
    and records files, and the fake's source files."""
    digest = hashlib.sha256()
    kept = {k: v for k, v in settings.items() if k != SETTING}
    digest.update(json.dumps(kept, sort_keys=True, default=str).encode("utf-8"))
    files = [p for sub in ("describe", "records") for p in sorted((root / sub).glob("*")) if p.is_file()]
    files += sorted(_SOURCES.glob("*.py"))
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


class ResponseCache:
    """Bodies by key, one file each; thread- and process-safe (a file appears whole or not at all)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._stored_bytes = 0

    @classmethod
    def for_org(cls, root: Path, settings: Mapping[str, Any]) -> ResponseCache | None:
        """The cache org.json asks for (a folder, relative to the org folder), or None.

        Raises:
            FakeOrgError: the setting is not a non-empty string, or the folder cannot be made.
        """
        raw = settings.get(SETTING)
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise FakeOrgError(f'org.json "{SETTING}" must be a folder path (a string), got {raw!r}')
        directory = (root / raw).resolve() / fingerprint(root, settings)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FakeOrgError(f'org.json "{SETTING}": cannot create {directory} ({exc}); pick another folder') from exc
        return cls(directory)

    def _path(self, key: Key) -> Path:
        name = hashlib.sha256(json.dumps(list(key)).encode("utf-8")).hexdigest()
        return self.directory / f"{name}.body"

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def body(self, key: Key, render: Callable[[], bytes]) -> bytes:
        """The cached body for `key`, or `render()` stored for the next time."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            pass
        else:
            self._count(hit=True)
            return data
        self._count(hit=False)
        data = render()
        self._write(path, [data])
        return data

    def stream(self, key: Key, render: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
        """The cached body for `key` in large chunks, or `render()`'s chunks, kept once all are sent."""
        path = self._path(key)
        if path.is_file():  # files are only ever added, whole
            self._count(hit=True)
            return _read(path)
        self._count(hit=False)
        return self._tee(path, render())

    def _tee(self, path: Path, chunks: Iterator[bytes]) -> Iterator[bytes]:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        complete = False
        try:
            with tmp.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    yield chunk
            complete = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if complete:
                self._keep(tmp, path)
            else:  # the client went away (or a fault cut the answer): nothing half-written stays
                tmp.unlink(missing_ok=True)

    def _write(self, path: Path, pieces: list[bytes]) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with tmp.open("wb") as out:
            for piece in pieces:
                out.write(piece)
        self._keep(tmp, path)

    def _keep(self, tmp: Path, path: Path) -> None:
        size = tmp.stat().st_size
        os.replace(tmp, path)  # atomic: another process sees the whole file or none
        with self._lock:
            self._stored_bytes += size

    def stats(self) -> dict[str, Any]:
        """Hits, misses and bytes stored by this process (GET /__fake__/state `response_cache`)."""
        with self._lock:
            return {
                "directory": str(self.directory),
                "hits": self._hits,
                "misses": self._misses,
                "stored_bytes": self._stored_bytes,
            }


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            yield chunk
