"""Replay mode: answer from recorded request/response pairs (vcrpy YAML cassettes, version 1)
instead of the org folder.

A request matches an interaction on method, path and query parameters, with the host ignored,
API versions normalised (`/v62.0/` = `/v59.0/` = CumulusCI's `/vxx.0/`), trailing slashes
dropped and parameter values whitespace-normalised; a JSON request body must match too (Bulk job
creation), other bodies (SOAP, OAuth forms: secrets, timestamps) are not compared. Identical
requests get their recorded answers in order, the last one repeating. Bodies are rewritten to
the replay server's URL and the requested version. An unrecorded request gets 404 NOT_FOUND and
is listed in the server's misses. CumulusCI's `include_file` interactions are resolved from
`include_dir`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from werkzeug.wrappers import Request, Response

from .errors import ApiError, FakeOrgError
from .state import ServerState

_DATA_VERSION = re.compile(r"/services/data/v(\d+\.\d+|xx\.0)(?=/|$)")
_OTHER_VERSION = re.compile(r"(/services/(?:Soap/[a-z]|async))/(\d+\.\d+|xx\.0)(?=/|$)")
_SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date", "server"})
_NOT_RECORDED = ApiError(404, "NOT_FOUND", "The requested resource does not exist")

Key = tuple[str, str, tuple[tuple[str, str], ...], str | None]


def normalise_path(path: str) -> str:
    path = _DATA_VERSION.sub("/services/data/vxx.0", path)
    path = _OTHER_VERSION.sub(r"\1/xx.0", path)
    return path.rstrip("/") or "/"


def _query(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, " ".join(v.split())) for k, v in parse_qsl(text, keep_blank_values=True)))


def _json_body(body: bytes | str | None) -> str | None:
    """A canonical form of a JSON body (None when the body is empty or not JSON)."""
    if not body:
        return None
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except (ValueError, TypeError):
        return None


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


@dataclass(frozen=True)
class Interaction:
    """One recorded exchange, indexed by its normalised request."""

    key: Key
    origin: str
    version: str | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _interaction(raw: Any, where: str) -> Interaction:
    try:
        request, response = raw["request"], raw["response"]
        uri = urlsplit(str(request["uri"]))
        method = str(request["method"]).upper()
        status = int(response["status"]["code"])
        body = response.get("body") or {}
        headers = tuple(
            (str(name), str(value))
            for name, values in (response.get("headers") or {}).items()
            for value in (values if isinstance(values, list) else [values])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FakeOrgError(f"{where}: not a vcrpy interaction (needs request uri/method, response status)") from exc
    version = _DATA_VERSION.search(uri.path)
    return Interaction(
        key=(method, normalise_path(uri.path), _query(uri.query), _json_body(request.get("body"))),
        origin=f"{uri.scheme}://{uri.netloc}",
        version=version.group(1) if version and version.group(1) != "xx.0" else None,
        status=status,
        headers=headers,
        body=_bytes(body.get("string") if isinstance(body, dict) else body),
    )


def load_cassettes(paths: Sequence[Path], *, include_dir: Path | None = None) -> list[Interaction]:
    """Every interaction of the cassettes, in order.

    Raises:
        FakeOrgError: a file is missing, not YAML, or not a version 1 cassette.
    """
    shared: dict[str, Any] = {}
    if include_dir is not None:
        for path in sorted(include_dir.glob("*.y*ml")):
            shared[path.name] = _read_yaml(path)
    interactions: list[Interaction] = []
    for path in paths:
        data = _read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
            raise FakeOrgError(f"{path}: not a vcrpy cassette (needs an 'interactions' list)")
        for n, raw in enumerate(data["interactions"], start=1):
            if isinstance(raw, dict) and "include_file" in raw:
                name = str(raw["include_file"])
                if name not in shared:
                    raise FakeOrgError(f"{path} interaction {n} includes {name}, not found in {include_dir}")
                raw = shared[name]
            interactions.append(_interaction(raw, f"{path} interaction {n}"))
    return interactions


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FakeOrgError(f"cassette {path} cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise FakeOrgError(f"cassette {path} is not valid YAML ({exc})") from exc


class Replayer:
    """Serves interactions; one instance per server (thread-safe playback positions)."""

    def __init__(self, interactions: Sequence[Interaction]) -> None:
        self._by_key: dict[Key, list[Interaction]] = {}
        for interaction in interactions:
            self._by_key.setdefault(interaction.key, []).append(interaction)
        self._played: dict[Key, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def reset(self) -> None:
        with self._lock:
            self._played.clear()

    def next_for(self, request: Request) -> Interaction | None:
        key: Key = (
            request.method.upper(),
            normalise_path(request.path),
            _query(request.query_string.decode("latin-1")),
            _json_body(request.get_data(cache=True)),
        )
        with self._lock:
            candidates = self._by_key.get(key)
            if not candidates:
                return None
            played = self._played.get(key, 0)
            self._played[key] = played + 1
            return candidates[min(played, len(candidates) - 1)]

    def dispatch(self, request: Request, state: ServerState, instance_url: str) -> tuple[Response, bool]:
        """The recorded answer, or 404 NOT_FOUND recorded as a miss; data API hits count as calls."""
        found = self.next_for(request)
        if found is None:
            query = request.query_string.decode("latin-1")
            state.miss(f"{request.method} {request.path}" + (f"?{query}" if query else ""))
            return Response(json.dumps(_NOT_RECORDED.body()), 404, content_type="application/json;charset=UTF-8"), False
        wanted = _DATA_VERSION.search(request.path)
        body = _rewrite(found, instance_url, wanted.group(1) if wanted else None)
        response = Response(body, found.status)
        response.headers.clear()
        for name, value in found.headers:
            if name.lower() not in _SKIPPED_HEADERS:
                response.headers.add(name, value.replace(found.origin, instance_url))
        response.content_length = len(body)
        counted = request.path.startswith("/services/data/v") and state.count_call() is not None
        return response, counted


def _rewrite(found: Interaction, instance_url: str, version: str | None) -> bytes:
    """Point recorded URLs at this server and at the requested API version (plain-text bodies only)."""
    if any(name.lower() == "content-encoding" for name, _ in found.headers):
        return found.body
    body = found.body.replace(found.origin.encode(), instance_url.encode())
    if version is not None:
        body = body.replace(b"/services/data/vxx.0", f"/services/data/v{version}".encode())
        if found.version is not None and found.version != version:
            body = body.replace(f"/services/data/v{found.version}".encode(), f"/services/data/v{version}".encode())
    return body
