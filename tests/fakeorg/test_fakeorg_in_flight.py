"""The in-flight gauge (how many requests, and file bodies, the fake was answering at once) and
2xx `respond` rules that stand in for a corrupted or short file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests

from plugin.fakeorg import FakeOrgServer, FaultRuleError, sf_id

BLOB = "/services/data/v62.0/sobjects/Attachment/{}/Body"


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOrgServer) -> None:
    fake.reset()


def _get(fake: FakeOrgServer, session: requests.Session, path: str) -> requests.Response:
    return session.get(f"{fake.instance_url}{path}", headers={"Authorization": f"Bearer {fake.access_token}"})


def test_peak_of_blob_downloads_in_flight_is_counted_apart_from_other_requests(
    fake: FakeOrgServer, make_session: Callable[[FakeOrgServer], requests.Session]
) -> None:
    # Held until all three are in: the peak is 3 whatever the machine's speed.
    release = threading.Barrier(4, timeout=10)
    fake.add_fault({"action": "delay", "seconds": 0.5, "path": "/Body$"})
    sessions = [make_session(fake) for _ in range(3)]
    results: list[int] = []

    def fetch(s: requests.Session) -> None:
        release.wait()
        results.append(_get(fake, s, BLOB.format(sf_id("00P", 1))).status_code)

    threads = [threading.Thread(target=fetch, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    release.wait()
    for t in threads:
        t.join(10)
    _get(fake, sessions[0], "/services/data/v62.0/limits")
    gauge = fake.snapshot()["in_flight"]
    assert results == [200, 200, 200]
    assert gauge["blobs"] == {"now": 0, "max": 3}
    assert gauge["requests"]["now"] == 0 and gauge["requests"]["max"] >= 3


def test_a_dropped_body_leaves_the_gauge(fake: FakeOrgServer, session: requests.Session) -> None:
    fake.add_fault({"action": "drop", "path": "/Body$", "nth": 1, "after_bytes": 10})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _get(fake, session, BLOB.format(sf_id("00P", 1))).content  # noqa: B018
    # The server thread closes the cut body after the client saw the error: wait for it.
    deadline = time.monotonic() + 10
    while fake.snapshot()["in_flight"]["blobs"]["now"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.snapshot()["in_flight"]["blobs"]["now"] == 0


def test_a_2xx_respond_rule_serves_a_wrong_body_with_a_good_status(
    fake: FakeOrgServer, session: requests.Session
) -> None:
    fake.add_fault(
        {"action": "respond", "status": 200, "body": "short", "content_type": "application/octetstream", "nth": 1}
    )
    first = _get(fake, session, BLOB.format(sf_id("00P", 1)))
    again = _get(fake, session, BLOB.format(sf_id("00P", 1)))
    assert (first.status_code, first.content) == (200, b"short")
    assert again.status_code == 200 and len(again.content) == 301


def test_a_2xx_respond_rule_needs_a_body(fake: FakeOrgServer) -> None:
    with pytest.raises(FaultRuleError, match="2xx status needs a body"):
        fake.add_fault({"action": "respond", "status": 200})
