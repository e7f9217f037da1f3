"""``manifest.json`` "compression": what was gzipped, how, and the checksums on both sides.

Only the CSVs under ``data/`` are compressed (gzip, level 9, mtime 0 so the same rows give the same
bytes). Describes, ``files/index.csv`` and file bodies stay as they are: bodies are often
compressed already, and a restore reads them byte for byte. Every ``.gz`` is read back here,
which proves it decompresses, and gives the sha256 of the CSV inside.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

GZIP_LEVEL = 9  # gzip.GzipFile's default, which CsvSink uses


def _content(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with gzip.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def compression_section(root: Path, *, enabled: bool) -> dict[str, Any]:
    if not enabled:
        return {"algorithm": None, "files": []}
    files = []
    for path in sorted((root / "data").glob("*.gz")):
        content_bytes, content_sha = _content(path)
        files.append(
            {
                "file": path.relative_to(root).as_posix(),
                "bytes": path.stat().st_size,
                "content_bytes": content_bytes,
                "content_sha256": content_sha,
            }
        )
    return {
        "algorithm": "gzip",
        "level": GZIP_LEVEL,
        "applies_to": "data/*.csv (written as data/*.csv.gz)",
        "not_compressed": "describe/, files/ (bodies and index.csv), manifest.json",
        "checksums": "each object's sha256 is of the .gz file as stored; content_sha256 is of the CSV inside",
        "files": files,
    }
