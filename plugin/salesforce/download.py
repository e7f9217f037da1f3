"""Downloading file bodies: a bounded pool, per-file retries, checks, and re-login.

Each body streams to a ``.part`` file, is checked (size against ContentSize/BodyLength, MD5
against ContentVersion.Checksum), and only then renamed into place, so a file under its final name
is always a good one. A dropped connection or a body that fails a check is fetched again (a few
attempts, with a short backoff); an expired session logs in again (``OrgClient.with_session_retry``, when the
credentials allow) and the same file starts again. What still fails is reported, never kept.
Every body kept is noted in a journal (``journal``: one JSON line per body, path, size, sha256).
A resumed job keeps the bodies an earlier attempt left under their final names when ``reuse``
allows it for the task, the journal names them with the sha256 they still have, and they pass the
same checks again (read from disk, no API call); every other body is downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import (
    SalesforceDataError,
    SalesforceError,
    SalesforceNetworkError,
    SalesforceNotFoundError,
)
from plugin.salesforce.files import DownloadReport, FileNote, FileResult, FileTask

ATTEMPTS = 3  # per file, for dropped connections and bodies that fail a check
RETRY_BACKOFF = 0.5  # seconds before the second attempt; doubles after each further one


class _Digests:
    """Wraps the ``.part`` file: counts bytes and keeps the MD5 Salesforce's Checksum is compared with."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunk: bytes) -> int:
        self.md5.update(chunk)
        return self.out.write(chunk)


@dataclass(frozen=True)
class _Body:
    size: int
    sha256: str
    md5: str


class FileDownloader:
    """Downloads bodies with at most ``parallel`` requests in flight."""

    def __init__(
        self,
        client: OrgClient,
        root: Path,
        *,
        parallel: int,
        reuse: Callable[[FileTask], bool] | None = None,
        journal: Path | None = None,
    ) -> None:
        self.client = client
        self.root = root
        self.files_root = (root / "files").resolve()
        self.parallel = max(1, min(10, parallel))
        self.reuse = reuse
        self.journal = journal
        self._journal_lock = threading.Lock()
        self._noted = read_journal(journal) if journal is not None and reuse is not None else {}

    def _note(self, result: FileResult) -> None:
        if self.journal is None:
            return
        line = json.dumps({"path": result.path, "bytes": result.size, "sha256": result.sha256}) + "\n"
        with self._journal_lock:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(line)

    def _fetch(self, task: FileTask, part: Path) -> _Body:
        url = f"/services/data/v{self.client.api_version}/sobjects/{task.object}/{task.record_id}/{task.field}"
        with open(part, "wb") as out:
            digests = _Digests(out)
            size, sha = self.client.download(url, digests, object_name=task.object)
            out.flush()
            os.fsync(out.fileno())
        return _Body(size, sha, digests.md5.hexdigest())

    @staticmethod
    def _problem(task: FileTask, body: _Body) -> tuple[str, str] | None:
        """(code, what is wrong) when the body is not the one the record describes."""
        if task.expected_size is not None and body.size != task.expected_size:
            return "FILE_SIZE_MISMATCH", f"{body.size} bytes arrived, the record says {task.expected_size}"
        if task.expected_md5 is not None and body.md5 != task.expected_md5:
            return "FILE_CHECKSUM_MISMATCH", f"MD5 {body.md5} differs from the record's Checksum {task.expected_md5}"
        return None

    def _kept(self, task: FileTask, rel: str, final: Path) -> FileResult | None:
        """The body an earlier attempt left at ``final``, if this task may reuse it and it passes the checks."""
        noted = self._noted.get(rel)
        if noted is None or self.reuse is None or not self.reuse(task) or not final.is_file():
            return None
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        with open(final, "rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
        body = _Body(size, sha.hexdigest(), md5.hexdigest())
        if (body.size, body.sha256) != noted or self._problem(task, body) is not None:
            return None  # changed on disk, or not the body the record describes now: download it again
        return FileResult(task, rel, body.size, body.sha256, attempts=0, reused=True)

    def _one(self, task: FileTask, primary: bool) -> FileResult | FileNote:
        rel = task.relative_path(primary)
        final = self.root / rel
        if not final.resolve().is_relative_to(self.files_root):  # names are checked; this is the last guard
            raise SalesforceDataError(f"{rel} would be written outside files/", object_name=task.object)
        kept = self._kept(task, rel, final)
        if kept is not None:
            return kept
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        problem: tuple[str, str] | None = None
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(RETRY_BACKOFF * 2 ** (attempt - 2))
            try:
                body = self.client.with_session_retry(lambda: self._fetch(task, part), object_name=task.object)
            except SalesforceNotFoundError:
                part.unlink(missing_ok=True)
                if task.deleted:
                    return FileNote(task, "record is in the recycle bin and Salesforce no longer serves its body")
                if not task.expected_size:
                    return FileNote(task, "no body (Salesforce has none for this record)")
                raise
            except SalesforceNetworkError:
                part.unlink(missing_ok=True)
                if attempt == ATTEMPTS:
                    raise
                continue
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            problem = self._problem(task, body)
            if problem is None:
                part.replace(final)
                result = FileResult(task, rel, body.size, body.sha256, attempts=attempt)
                self._note(result)
                return result
        part.unlink(missing_ok=True)
        code, detail = problem or ("FILE_CHECK_FAILED", "")
        raise SalesforceDataError(
            f"{task.object} {task.record_id}.{task.field}: {detail} ({ATTEMPTS} attempts); the body was not kept",
            code=code,
            retryable=True,
            object_name=task.object,
        )

    def run(self, tasks: list[FileTask], *, on_done: Callable[[FileResult], None]) -> DownloadReport:
        """Download every task; a failure never stops the others."""
        report = DownloadReport([], [], [])
        seen: set[tuple[str, str]] = set()
        jobs: list[tuple[FileTask, bool]] = []
        for task in tasks:
            key = (task.object, task.record_id)
            jobs.append((task, key not in seen))
            seen.add(key)
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="sfbackup-dl") as pool:
            futures = {pool.submit(self._one, t, primary): t for t, primary in jobs}
            try:
                for future in as_completed(futures):
                    task = futures[future]
                    try:
                        outcome = future.result()
                    except SalesforceError as e:
                        report.failures.append((task, e))
                        continue
                    if isinstance(outcome, FileNote):
                        report.notes.append(outcome)
                        continue
                    report.results.append(outcome)
                    on_done(outcome)
            except BaseException:
                # on_done stopped the run (a cancel): drop the queued downloads, wait only for those in flight.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        report.results.sort(key=lambda r: (r.task.object, r.task.record_id, r.task.field))
        report.notes.sort(key=lambda n: (n.task.object, n.task.record_id, n.task.field))
        report.failures.sort(key=lambda f: (f[0].object, f[0].record_id, f[0].field))
        return report


def read_journal(path: Path) -> dict[str, tuple[int, str]]:
    """Path -> (bytes, sha256) of the bodies noted in ``path``; a torn last line (a kill) is skipped."""
    noted: dict[str, tuple[int, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return noted
    for line in lines:
        try:
            entry = json.loads(line)
            noted[str(entry["path"])] = (int(entry["bytes"]), str(entry["sha256"]))
        except (ValueError, KeyError, TypeError):
            continue
    return noted
