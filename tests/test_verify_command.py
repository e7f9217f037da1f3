"""`sfbackup verify` end to end: a read-only audit of events.db (full integrity_check, guard
triggers, hash chain, sqlite_sequence) and of the log head every backup manifest recorded."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from events import EventLog, NewEvent
from events.schema import TRIGGERS_DDL
from plugin.cli import cli
from projections import ProjectionStore

ORG = "00D000000000042"


def _verify(*args: str, code: int) -> str:
    result = CliRunner().invoke(cli, ["verify", *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _verify_json(code: int) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_verify("--json", code=code))
    return report


def _fill(home: Path, n: int = 6, *, tag: str = "marker") -> list[str]:
    """A log of ``n`` events whose data carry a findable text; returns their hashes."""
    with EventLog.open(home / "events.db") as log:
        for i in range(1, n + 1):
            event = NewEvent("job.progress", {"current_object": f"{tag}-{i:04d}", "percent": i})
            log.append(f"job-{ORG}-{i % 2}", [event], expected_version=None)
        return [e.hash for e in log.read_all()]


def _manifest(home: Path, name: str, head: object) -> Path:
    folder = home / "backups" / ORG / name
    folder.mkdir(parents=True)
    path = folder / "manifest.json"
    path.write_text(json.dumps({"format": "sfbackup-manifest", "event_log_head": head}), encoding="utf-8")
    return path


def _anchor(home: Path, name: str, position: int, digest: str) -> Path:
    return _manifest(home, name, {"position": position, "hash": digest})


def _raw(home: Path, *statements: str) -> None:
    raw = sqlite3.connect(home / "events.db", isolation_level=None)
    try:
        for sql in statements:
            raw.execute(sql)
    finally:
        raw.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_intact_log_passes_and_json_lists_every_anchor_checked(home: Path) -> None:
    hashes = _fill(home)
    early = _anchor(home, "20250101T000000Z-early", 3, hashes[2])
    late = _anchor(home, "20250102T000000Z-late", 6, hashes[5])
    _anchor(home, "20250103T000000Z-busy.partial", 99, "ab" * 32)  # still being written: not a backup yet
    with EventLog.open(home / "events.db") as log:
        ProjectionStore(log).catch_up()
    report = _verify_json(0)
    assert report["ok"] is True and report["problems"] == []
    assert (report["checked"], report["head"]) == (6, {"position": 6, "hash": hashes[5]})
    assert report["integrity_check"] == ["ok"] and report["missing_triggers"] == []
    assert [(a["source"], a["position"], a["ok"]) for a in report["anchors"]] == [
        (str(early), 3, True),
        (str(late), 6, True),
    ]
    assert [(c["position"], c["ok"]) for c in report["checkpoints"]] == [(6, True), (6, True)]
    assert _verify(code=0).startswith("ok: 6 events, chain intact, integrity_check ok, 2 manifest anchor(s) match")


def test_a_log_whose_triggers_were_removed_is_audited_read_only(home: Path) -> None:
    _fill(home)
    _raw(home, "DROP TRIGGER events_no_update")
    before = _digest(home / "events.db")
    report = _verify_json(1)
    assert report["missing_triggers"] == ["events_no_update"]
    assert report["checked"] == 6 and report["first_bad_position"] is None  # the chain itself is intact
    [problem] = report["problems"]
    assert problem.startswith("guard trigger(s) events_no_update are missing")
    assert "restore events.db from a backup copy" in problem
    assert _digest(home / "events.db") == before
    wal = Path(f"{home / 'events.db'}-wal")  # a read-only WAL reader may leave an empty one behind
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_flipped_byte_in_the_file_is_named_by_position(home: Path) -> None:
    """Edited outside SQLite, so every trigger is still in place and the file is well formed."""
    _fill(home)
    path = home / "events.db"
    data = bytearray(path.read_bytes())
    offset = data.index(b"marker-0004")
    data[offset] ^= 0x01  # 'm' -> 'l'
    path.write_bytes(bytes(data))
    report = _verify_json(1)
    assert report["integrity_check"] == ["ok"] and report["missing_triggers"] == []
    assert report["first_bad_position"] == 4
    assert report["problem"] == "stored hash does not match the event's content"
    text = _verify(code=1)
    assert f"FAILED: {path} cannot be trusted (first bad position 4):" in text
    assert "the hash chain breaks at position 4: stored hash does not match the event's content" in text
    assert "restore events.db from a backup copy, then run `sfbackup rebuild`" in text


def test_swapped_rows_are_named_by_the_first_position(home: Path) -> None:
    _fill(home)
    _raw(
        home,
        "DROP TRIGGER events_no_update",
        "UPDATE events SET data = CASE id WHEN 2 THEN (SELECT data FROM events WHERE id = 3) "
        "ELSE (SELECT data FROM events WHERE id = 2) END WHERE id IN (2, 3)",
        TRIGGERS_DDL["events_no_update"],
    )
    report = _verify_json(1)
    assert report["missing_triggers"] == []
    assert report["first_bad_position"] == 2
    assert len(report["problems"]) == 1 and "the hash chain breaks at position 2" in report["problems"][0]


def test_a_truncated_tail_is_caught_by_sqlite_sequence_and_the_manifest_anchor(home: Path) -> None:
    hashes = _fill(home)
    early = _anchor(home, "20250101T000000Z-early", 3, hashes[2])
    late = _anchor(home, "20250102T000000Z-late", 6, hashes[5])
    _raw(home, "DROP TRIGGER events_no_delete", "DELETE FROM events WHERE id > 4", TRIGGERS_DDL["events_no_delete"])
    report = _verify_json(1)
    assert report["head"]["position"] == 4 and report["first_bad_position"] == 5
    assert report["highest_issued"] == 6
    assert any("positions up to 6 were handed out, but the log ends at 4" in p for p in report["problems"])
    assert [(a["source"], a["ok"]) for a in report["anchors"]] == [(str(early), True), (str(late), False)]
    # A careful truncation also resets sqlite_sequence: only the manifest still knows.
    _raw(home, "UPDATE sqlite_sequence SET seq = 4 WHERE name = 'events'")
    report = _verify_json(1)
    [problem] = report["problems"]
    assert problem.startswith(f"anchor in {late} records position 6, but the log ends at position 4: events 5..6")
    assert report["first_bad_position"] == 5


def test_a_rewritten_log_fails_every_anchor_recorded_before(home: Path) -> None:
    hashes = _fill(home)
    first = _anchor(home, "20250101T000000Z-a", 2, hashes[1])
    second = _anchor(home, "20250102T000000Z-b", 6, hashes[5])
    for leftover in home.glob("events.db*"):
        leftover.unlink()
    _fill(home, 7, tag="forged")  # a whole new, internally consistent chain
    report = _verify_json(1)
    assert report["checked"] == 7 and report["first_bad_position"] is None
    assert [(a["source"], a["ok"]) for a in report["anchors"]] == [(str(first), False), (str(second), False)]
    assert report["anchors"][1]["problem"].endswith("the log was rewritten at or before position 6")
    assert len(report["problems"]) == 2


def test_the_full_integrity_check_finds_what_quick_check_misses(home: Path) -> None:
    with EventLog.open(home / "events.db") as log:
        for i in range(3):
            log.append(
                "job-a", [NewEvent("job.progress", {"percent": i}, correlation_id=f"c{i}")], expected_version=None
            )
    # Point the correlation index at another column: its entries no longer match the rows.
    _raw(
        home,
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = replace(sql, 'correlation_id', 'causation_id') "
        "WHERE name = 'events_correlation'",
    )
    with EventLog.open(home / "events.db") as log:  # quick_check at open passes
        assert log.query("PRAGMA quick_check") == [{"quick_check": "ok"}]
    report = _verify_json(1)
    assert report["integrity_check"] == ["wrong # of entries in index events_correlation"]
    [problem] = report["problems"]
    assert problem.startswith("PRAGMA integrity_check reports: wrong # of entries in index events_correlation.")
    assert "The file is damaged" in problem


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "cannot be read as JSON"),
        (json.dumps({"format": "sfbackup-manifest"}), "has no valid event_log_head"),
        (json.dumps({"event_log_head": {"position": "6", "hash": "ab" * 32}}), "has no valid event_log_head"),
    ],
    ids=["not-json", "no-anchor", "position-as-text"],
)
def test_a_manifest_without_a_usable_anchor_is_reported(home: Path, body: str, problem: str) -> None:
    _fill(home)
    path = _manifest(home, "20250101T000000Z-x", None)
    path.write_text(body, encoding="utf-8")
    report = _verify_json(1)
    [check] = report["anchors"]
    assert (check["source"], check["ok"]) == (str(path), False)
    assert problem in check["problem"]
    [message] = report["problems"]
    assert message.startswith(f"{path} {check['problem']}. Every manifest sfbackup writes records the log head")


def test_an_empty_home_passes_without_creating_a_log(home: Path) -> None:
    assert _verify(code=0).startswith("ok: no event log yet")
    assert not (home / "events.db").exists()


def test_manifests_without_their_log_fail(home: Path) -> None:
    _anchor(home, "20250101T000000Z-a", 6, "ab" * 32)
    text = _verify(code=1)
    assert "there is no event log at" in text and "1 backup manifest(s)" in text
    assert not (home / "events.db").exists()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: path.write_bytes(b"not sqlite at all" * 300), "is not an SQLite database"),
        (lambda path: sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close(), "no such table"),
    ],
    ids=["not-a-database", "not-an-event-log"],
)
def test_a_file_that_cannot_be_audited_fails_with_the_reason(home: Path, make: Any, reason: str) -> None:
    make(home / "events.db")
    report = _verify_json(1)
    [problem] = report["problems"]
    assert problem.startswith(f"cannot audit {home / 'events.db'}: ")
    assert reason in problem and "restore events.db from a backup copy" in problem
