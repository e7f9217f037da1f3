"""Starting and stopping the fake org: an in-process TLS server in a daemon thread, and `serve()`
for `sfbackup fake-org serve` (one JSON line on stdout, then serve until SIGTERM/SIGINT).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import Credentials, FakeOrgApp
from .errors import FakeOrgError
from .org import FakeOrg, load_org
from .state import LoggedRequest, ServerState
from .tls import write_tls_files

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to our logger at DEBUG (werkzeug logs them at INFO to its own logger)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.WARNING if type == "error" else logging.DEBUG
        log.log(level, "%s - " + message, self.address_string(), *args)


def _listen(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (werkzeug duplicates its descriptor)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class FakeOrgServer:
    """A fake Salesforce org on https://127.0.0.1:<port>; use as a context manager or start()/stop().

    Raises (from the constructor):
        FakeOrgError: the org folder cannot be loaded.
    """

    def __init__(self, org_dir: Path, *, port: int = 0, page_size: int | None = None) -> None:
        self.org: FakeOrg = load_org(Path(org_dir))
        settings = self.org.settings
        if page_size is not None and page_size < 1:
            raise FakeOrgError(f"page_size must be at least 1, got {page_size}")
        self.username = str(settings.get("username") or f"admin@{self.org.org_id[:15].lower()}.fake")
        self.password = str(settings.get("password") or secrets.token_urlsafe(12))
        self.security_token = str(settings.get("security_token") or secrets.token_hex(12).upper())
        api_max, api_remaining = self.org.api_limit()
        self.state = ServerState(org_id=self.org.org_id, api_max=api_max, api_remaining=api_remaining)
        self.access_token = self.state.issue_token()
        self.app = FakeOrgApp(
            self.org,
            self.state,
            Credentials(self.username, self.password, self.security_token),
            page_size=page_size if page_size is not None else self.org.page_size,
        )
        self._port = port
        self._tmp: Path | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_bundle = Path()
        self.instance_url = ""

    @property
    def org_id(self) -> str:
        return self.org.org_id

    def start(self) -> FakeOrgServer:
        """Bind, generate the throw-away CA and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._tmp = Path(tempfile.mkdtemp(prefix="sfbackup-fakeorg-"))
        try:
            tls = write_tls_files(self._tmp)
            # Bind here, not in make_server: werkzeug prints and calls sys.exit(1) when a port is taken.
            with _listen(self._port) as sock:
                self._server = make_server(
                    HOST,
                    self._port,
                    self.app,
                    threaded=True,
                    request_handler=_QuietHandler,
                    ssl_context=tls.server_context(),
                    fd=sock.fileno(),
                )
        except OSError as exc:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise FakeOrgError(
                f"cannot listen on {HOST}:{self._port} ({exc}); pick another port or 0 for a free one"
            ) from exc
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self.ca_bundle = tls.ca_path
        self.instance_url = f"https://{HOST}:{self._server.port}"
        self.app.instance_url = self.instance_url
        # A short poll interval makes stop() return in ~50 ms instead of serve_forever's 0.5 s.
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="fake-org", daemon=True
        )
        try:
            self._thread.start()
        except BaseException:
            # shutdown() would wait forever for a loop that never ran: close directly.
            self._server, self._thread = None, None
            server.server_close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            raise
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and remove the CA/key files."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> FakeOrgServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request answered so far (method, path, query string, status, counted)."""
        return self.state.request_log()

    @property
    def api_calls(self) -> int:
        """API calls counted toward the daily limit since start."""
        return self.state.api_calls

    def expire_sessions(self) -> None:
        """Invalidate every issued session id, as a Salesforce session timeout would."""
        self.state.expire_sessions()

    def info(self) -> dict[str, str]:
        """The connection details `serve()` prints as its JSON line."""
        return {
            "instance_url": self.instance_url,
            "ca_bundle": str(self.ca_bundle),
            "access_token": self.access_token,
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
            "org_id": self.org_id,
        }


def start_fake_org(org_dir: Path, *, port: int = 0, page_size: int | None = None) -> FakeOrgServer:
    """Load `org_dir` and start serving it; use in a `with` block or call `stop()`.

    Raises:
        FakeOrgError: the org folder cannot be loaded.
    """
    return FakeOrgServer(org_dir, port=port, page_size=page_size).start()


def serve(org_dir: Path, *, port: int = 0, page_size: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT, after printing ONE JSON line of connection details to stdout.

    Raises:
        FakeOrgError: the org folder cannot be loaded.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with start_fake_org(org_dir, port=port, page_size=page_size) as fake:
            sys.stdout.write(json.dumps(fake.info()) + "\n")
            sys.stdout.flush()
            log.info("fake org %s serving %s at %s", fake.org_id, org_dir, fake.instance_url)
            while not stopping.wait(1.0):  # a timed wait keeps the main thread responsive to signals
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
