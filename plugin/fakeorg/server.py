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
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import FakeOrgApp
from .auth import Credentials, settings_credentials, write_jwt_files
from .client import client_session
from .errors import FakeOrgError
from .faultrules import FaultRule
from .faults import FaultInjector
from .org import FakeOrg, load_org
from .replay import Replayer, load_cassettes
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

    `replay` cassettes (vcrpy YAML) make it answer from recordings instead of the org's routes;
    `include_dir` resolves CumulusCI `include_file` interactions.

    Raises (from the constructor):
        FakeOrgError: the org folder, a cassette or the JWT certificate cannot be loaded.
    """

    def __init__(
        self,
        org_dir: Path,
        *,
        port: int = 0,
        page_size: int | None = None,
        replay: Sequence[Path] = (),
        include_dir: Path | None = None,
    ) -> None:
        self.org: FakeOrg = load_org(Path(org_dir))
        settings = self.org.settings
        if page_size is not None and page_size < 1:
            raise FakeOrgError(f"page_size must be at least 1, got {page_size}")
        self.username = str(settings.get("username") or f"admin@{self.org.org_id[:15].lower()}.fake")
        self.password = str(settings.get("password") or secrets.token_urlsafe(12))
        self.security_token = str(settings.get("security_token") or secrets.token_hex(12).upper())
        api_max, api_remaining = self.org.api_limit()
        self.state = ServerState(org_id=self.org.org_id, api_max=api_max, api_remaining=api_remaining)
        self.access_token = self.state.issue_token(keep_on_reset=True)
        app_settings = settings_credentials(settings, root=self.org.root)
        self.credentials = Credentials(self.username, self.password, self.security_token, **app_settings)
        replayer = Replayer(load_cassettes(replay, include_dir=include_dir)) if replay else None
        self.app = FakeOrgApp(
            self.org,
            self.state,
            self.credentials,
            page_size=page_size if page_size is not None else self.org.page_size,
            replay=replayer,
        )
        self._port = port
        self._tmp: Path | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_bundle = Path()
        self.jwt_key_file = Path()
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
            self.jwt_key_file = write_jwt_files(self._tmp).key_path
            # Bind here, not in make_server: werkzeug prints and calls sys.exit(1) when a port is taken.
            with _listen(self._port) as sock:
                self._server = make_server(
                    HOST, self._port, self.app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
                )
            # With ssl_context, werkzeug does each TLS handshake in its one accept loop, so a client that
            # stalls mid-handshake (a stopped process, a bare TCP connect) blocks every other client. Wrapped
            # without the handshake, it runs on the connection's first read, in that request's own thread.
            context = tls.server_context()
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self._server.ssl_context = context
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
        self.state.stopping.set()  # ends fault delays at once
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
        """Every request answered so far (seq, method, path, query string, status, counted, faults)."""
        return self.state.request_log()

    @property
    def faults(self) -> FaultInjector:
        """The fault rules: `faults.add({...})` (same JSON as POST /__fake__/faults), `remove`, `clear`."""
        return self.app.faults

    def add_fault(self, rule: Mapping[str, Any] | FaultRule) -> str:
        """Arm one fault rule; returns its id.

        Raises:
            FaultRuleError: the rule is not valid (the message names the field).
        """
        return self.app.faults.add(rule)

    def reset(self) -> None:
        """Fault rules, request log, API usage, sessions (the start-up token stays valid), cursors,
        Bulk jobs and overrides and replay positions back to the just-started state."""
        self.app.reset()

    def snapshot(self) -> dict[str, Any]:
        """What GET /__fake__/state answers: API calls, usage, logins, requests, misses, ..."""
        return self.app.control.snapshot()

    @property
    def api_calls(self) -> int:
        """API calls counted toward the daily limit since start."""
        return self.state.api_calls

    def expire_sessions(self) -> None:
        """Invalidate every issued session id, as a Salesforce session timeout would."""
        self.state.expire_sessions()

    def client_session(self) -> requests.Session:
        """A session for simple-salesforce against this fake: its CA, and logins to
        `https://*.salesforce.com` redirected here. Close it when done."""
        return client_session(self.instance_url, str(self.ca_bundle))

    def info(self) -> dict[str, str]:
        """The connection details `serve()` prints as its JSON line.

        `instance_url` is also the login URL (SOAP and OAuth): set it as SF_LOGIN_URL.
        """
        return {
            "instance_url": self.instance_url,
            "ca_bundle": str(self.ca_bundle),
            "access_token": self.access_token,
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
            "org_id": self.org_id,
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "refresh_token": self.credentials.refresh_token,
            "jwt_key_file": str(self.jwt_key_file),
        }


def start_fake_org(
    org_dir: Path,
    *,
    port: int = 0,
    page_size: int | None = None,
    replay: Sequence[Path] = (),
    include_dir: Path | None = None,
) -> FakeOrgServer:
    """Load `org_dir` and start serving it; use in a `with` block or call `stop()`.

    Raises:
        FakeOrgError: the org folder (or a cassette) cannot be loaded.
    """
    return FakeOrgServer(org_dir, port=port, page_size=page_size, replay=replay, include_dir=include_dir).start()


def serve(
    org_dir: Path,
    *,
    port: int = 0,
    page_size: int | None = None,
    replay: Sequence[Path] = (),
    include_dir: Path | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, after printing ONE JSON line of connection details to stdout.

    Raises:
        FakeOrgError: the org folder cannot be loaded.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with start_fake_org(org_dir, port=port, page_size=page_size, replay=replay, include_dir=include_dir) as fake:
            sys.stdout.write(json.dumps(fake.info()) + "\n")
            sys.stdout.flush()
            log.info("fake org %s serving %s at %s", fake.org_id, org_dir, fake.instance_url)
            while not stopping.wait(1.0):  # a timed wait keeps the main thread responsive to signals
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
