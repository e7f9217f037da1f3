"""A client that connects and then stalls before its TLS handshake (a stopped process, a bare TCP
connect) must not keep the fake org from answering everyone else, as it did when werkzeug shook hands
in its accept loop (a SIGSTOPped worker froze every other worker's requests)."""

from __future__ import annotations

import socket
from pathlib import Path

from plugin.fakeorg import start_fake_org


def test_a_stalled_handshake_does_not_block_other_clients(demo_org: Path) -> None:
    with start_fake_org(demo_org) as fake:
        host, port = fake.instance_url.removeprefix("https://").split(":")
        with socket.create_connection((host, int(port))) as stalled:
            stalled.settimeout(30)
            session = fake.client_session()
            try:
                answer = session.get(f"{fake.instance_url}/services/data/", timeout=30)
            finally:
                session.close()
            assert answer.status_code == 200
            assert answer.json()[0]["version"]
