"""File bodies against the fake org's faults: dropped connections, expired sessions, wrong bodies,
and the bound on downloads in flight. No fault may leave a file recorded as good when it is not."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin.salesforce import download
from plugin.salesforce.errors import ExportFailedError, SalesforceAuthError
from tests.conftest import DEMO_ORG
from tests.orgdata import blobs
from tests.salesforce.exports import export, index_rows, password_credentials

ATTACHMENTS = ("Attachment",)
ATTACHMENT_BODY = "/sobjects/Attachment/[^/]+/Body"
INVOICE = "00P5g00000YedudEAB"  # invoice-0001.pdf, 4000 bytes
ONE_BYTE_VERSION = "0685g00000H8JFpAAN"  # ContentVersion "One byte": b"\n"


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    from plugin.fakeorg import start_fake_org

    with start_fake_org(DEMO_ORG, page_size=250) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    demo.reset()
    monkeypatch.setattr(download, "RETRY_BACKOFF", 0.01)


def expected_bodies(obj: str) -> dict[str, str]:
    return {rid: sha for (o, rid, _), sha in blobs(DEMO_ORG).items() if o == obj}


def assert_every_kept_file_is_good(directory: Path) -> dict[str, dict[str, str]]:
    """Every row of files/index.csv names a file with that sha256; nothing else lies around."""
    rows = index_rows(directory)
    for row in rows.values():
        assert hashlib.sha256((directory / row["path"]).read_bytes()).hexdigest() == row["sha256"]
    on_disk = {p.relative_to(directory).as_posix() for p in (directory / "files").rglob("*") if p.is_file()}
    assert on_disk == {r["path"] for r in rows.values()} | {"files/index.csv"}  # no .part, no stray body
    return rows


def blob_requests(fake: Any, obj: str = "Attachment") -> list[Any]:
    return [e for e in fake.request_log if f"/sobjects/{obj}/" in e.path and e.path.endswith(("/Body", "/VersionData"))]


def test_a_connection_dropped_mid_file_retries_that_file(demo: Any, tmp_path: Path) -> None:
    demo.add_fault({"action": "drop", "path": ATTACHMENT_BODY, "nth": 7})
    run = export(demo, tmp_path / "b", backup_type="files_only", objects_filter=ATTACHMENTS)
    rows = assert_every_kept_file_is_good(run.directory)
    assert {rid: r["sha256"] for rid, r in rows.items()} == expected_bodies("Attachment")
    assert run.manifest["files"]["retried"] == 1
    assert len(blob_requests(demo)) == 41  # 40 bodies, one of them twice


def test_an_expired_session_mid_download_logs_in_once_and_continues(demo: Any, tmp_path: Path) -> None:
    demo.add_fault({"action": "expire_session", "path": ATTACHMENT_BODY, "nth": 5})
    run = export(
        demo,
        tmp_path / "b",
        credentials=password_credentials(demo),
        backup_type="files_only",
        objects_filter=ATTACHMENTS,
        parallel_downloads=4,
    )
    rows = assert_every_kept_file_is_good(run.directory)
    assert {rid: r["sha256"] for rid, r in rows.items()} == expected_bodies("Attachment")
    refused = [e for e in blob_requests(demo) if e.status == 401]
    assert refused  # the expiry really hit downloads in flight
    # one login to start, one after the expiry, however many downloads saw the old session at once
    assert run.logins == 2 and demo.snapshot()["logins"] == 2
    assert run.manifest["files"]["retried"] == 0  # a renewed session is not a failed attempt


def test_an_expired_access_token_fails_saying_how_to_refresh_and_keeps_no_bad_file(demo: Any, tmp_path: Path) -> None:
    demo.add_fault({"action": "expire_session", "path": ATTACHMENT_BODY, "nth": 5})
    with pytest.raises(SalesforceAuthError, match="get a fresh access token") as info:
        export(demo, tmp_path / "b", backup_type="files_only", objects_filter=ATTACHMENTS, parallel_downloads=1)
    assert info.value.code == "INVALID_SESSION_ID"
    partial = tmp_path / "b.partial"
    rows = assert_every_kept_file_is_good(partial)
    assert len(rows) == 4 and not (partial / "manifest.json").exists()


def test_a_wrong_size_body_is_fetched_again(demo: Any, tmp_path: Path) -> None:
    short = {"action": "respond", "status": 200, "body": "short", "content_type": "application/octetstream"}
    demo.add_fault({**short, "path": f"/Attachment/{INVOICE}/Body", "nth": 1})
    run = export(demo, tmp_path / "b", backup_type="files_only", objects_filter=ATTACHMENTS)
    rows = assert_every_kept_file_is_good(run.directory)
    assert rows[INVOICE]["sha256"] == expected_bodies("Attachment")[INVOICE]
    assert run.manifest["files"]["retried"] == 1


def test_a_body_that_stays_the_wrong_size_is_an_error_and_is_not_kept(demo: Any, tmp_path: Path) -> None:
    short = {"action": "respond", "status": 200, "body": "short", "content_type": "application/octetstream"}
    demo.add_fault({**short, "path": f"/Attachment/{INVOICE}/Body", "times": 10})
    with pytest.raises(ExportFailedError, match="FILE_SIZE_MISMATCH") as info:
        export(demo, tmp_path / "b", backup_type="files_only", objects_filter=ATTACHMENTS)
    assert info.value.code == "FILES_FAILED" and info.value.retryable
    assert "5 bytes arrived, the record says 4000 (3 attempts)" in str(info.value)
    rows = assert_every_kept_file_is_good(tmp_path / "b.partial")
    assert INVOICE not in rows and len(rows) == 39
    assert len([e for e in blob_requests(demo) if INVOICE in e.path]) == download.ATTEMPTS


def test_a_content_version_whose_md5_differs_from_its_checksum_is_not_kept(demo: Any, tmp_path: Path) -> None:
    # Same size as the real body (1 byte): only ContentVersion.Checksum can tell.
    wrong = {"action": "respond", "status": 200, "body": "x", "content_type": "application/octetstream"}
    demo.add_fault({**wrong, "path": f"/ContentVersion/{ONE_BYTE_VERSION}/VersionData", "times": 10})
    with pytest.raises(ExportFailedError, match="FILE_CHECKSUM_MISMATCH"):
        export(demo, tmp_path / "b", backup_type="files_only", objects_filter=("ContentVersion",))
    rows = assert_every_kept_file_is_good(tmp_path / "b.partial")
    assert ONE_BYTE_VERSION not in rows and len(rows) == 39


@pytest.mark.parametrize("parallel", [1, 3, 10])
def test_parallel_downloads_bounds_the_bodies_in_flight(demo: Any, tmp_path: Path, parallel: int) -> None:
    """The fake's gauge counts body requests being answered; each waits, so the pool fills up."""
    demo.add_fault({"action": "delay", "seconds": 0.1 if parallel == 1 else 0.4, "path": "/sobjects/Document/"})
    run = export(
        demo, tmp_path / "b", backup_type="files_only", objects_filter=("Document",), parallel_downloads=parallel
    )
    assert len(blob_requests(demo, "Document")) == 10  # 9 bodies and the URL document's (404)
    assert demo.snapshot()["in_flight"]["blobs"] == {"now": 0, "max": parallel}
    assert run.manifest["options"]["parallel_downloads"] == parallel


def test_a_failed_object_beside_a_failed_body_still_gives_files_failed_naming_the_body(
    demo: Any, tmp_path: Path
) -> None:
    """The message lists the bodies that failed; an object's failure (no record id) listed first in
    the manifest's errors once made it a KeyError instead."""
    short = {"action": "respond", "status": 200, "body": "short", "content_type": "application/octetstream"}
    demo.add_fault({**short, "path": f"/Attachment/{INVOICE}/Body", "times": 10})
    demo.add_fault({"action": "respond", "status": 500, "sobject": "Document", "path": "query", "times": 50})
    with pytest.raises(ExportFailedError, match="FILE_SIZE_MISMATCH") as info:
        export(demo, tmp_path / "b", backup_type="files_only", objects_filter=("Attachment", "Document"))
    assert info.value.code == "FILES_FAILED"
    assert f"Attachment {INVOICE}: FILE_SIZE_MISMATCH" in str(info.value)
