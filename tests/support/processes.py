"""Starting real ``sfbackup`` processes in tests and reading their first stdout line with a deadline."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def first_json_line(proc: subprocess.Popen[str], *, stderr: Path, timeout: float = 60) -> dict[str, Any]:
    """The first stdout line of ``proc`` as JSON; fails with its stderr if it exits or stays silent."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        stop(proc)
        raise AssertionError(f"no JSON line (exit {proc.returncode}): {stderr.read_text(encoding='utf-8')[-3000:]}")
    data: dict[str, Any] = json.loads(line)
    return data


def environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment (already cleaned by conftest) plus ``extra``."""
    return {**os.environ, **(extra or {})}


@contextmanager
def http_server(home: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``sfbackup serve --http --port 0`` as a subprocess; yields its URL and stops it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    stderr = home.parent / f"{home.name}.http.stderr.log"
    with open(stderr, "w", encoding="utf-8") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "--home", str(home), "serve", "--http", "--port", "0"],
            cwd=REPO,
            env=environ(env),
            stdout=subprocess.PIPE,
            stderr=errlog,
            text=True,
        )
        try:
            yield str(first_json_line(proc, stderr=stderr)["url"])
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate and reap ``proc`` (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
