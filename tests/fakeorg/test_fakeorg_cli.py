"""`serve()` as `sfbackup fake-org serve` runs it: one JSON line on stdout, serve until SIGTERM."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

MINI = Path(__file__).parent / "orgs" / "mini"
REPO = Path(__file__).resolve().parents[2]


def read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        assert selector.select(timeout=max(0.0, remaining)), "no JSON line before the deadline"
    return proc.stdout.readline()


def test_serve_prints_one_json_line_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "fake-org", "serve", "--org", str(MINI), "--page-size", "7"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        line = read_line(proc, time.monotonic() + 30)
        info = json.loads(line)
        assert set(info) == {
            "instance_url", "ca_bundle", "access_token", "username", "password", "security_token", "org_id",
            "client_id", "client_secret", "refresh_token", "jwt_key_file",
        }  # fmt: skip
        assert info["instance_url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_bundle"]).is_file() and Path(info["jwt_key_file"]).is_file()
        with requests.Session() as session:
            session.verify = info["ca_bundle"]
            session.trust_env = False
            response = session.get(
                info["instance_url"] + "/services/data/v62.0/query",
                params={"q": "SELECT Id FROM Organization"},
                headers={"Authorization": "Bearer " + info["access_token"]},
                timeout=10,
            )
        assert response.json()["records"][0]["Id"] == info["org_id"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == ""  # nothing but the one JSON line ever reaches stdout
        assert not Path(info["ca_bundle"]).exists() and not Path(info["jwt_key_file"]).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
