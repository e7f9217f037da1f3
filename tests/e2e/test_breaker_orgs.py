"""Orgs built to break the exporter (fixtures/orgs/generate_breakers.py), backed up by a real worker
through `sfbackup backup` over REST and over Bulk, and compared with the org files value by value:
hostile text, exact number literals, edge datetimes, a 250-field object, namespaced names, objects
with no rows, file bodies of zero bytes with odd names, and objects Salesforce refuses."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plugin.cli import cli
from plugin.fakeorg import FakeOrgServer, start_fake_org
from tests.conftest import sf_env
from tests.orgdata import blobs, expected_cell, load_objects

pytestmark = pytest.mark.e2e
ORGS = Path(__file__).resolve().parents[2] / "fixtures" / "orgs"
REFUSED = {"Legacy__c": "INVALID_TYPE_FOR_OPERATION", "acme__Gated__c": "MALFORMED_QUERY"}


@pytest.fixture(scope="module", params=["nasty", "refusals"])
def org(request: pytest.FixtureRequest) -> Iterator[tuple[Path, FakeOrgServer]]:
    folder = ORGS / request.param
    with start_fake_org(folder) as fake:
        yield folder, fake


def backup(home: Path, fake: FakeOrgServer, monkeypatch: pytest.MonkeyPatch, bulk_threshold: str) -> dict[str, Any]:
    for key, value in {**sf_env(fake), "SFBACKUP_BULK_THRESHOLD": bulk_threshold}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["--home", str(home), "backup", "--type", "full", "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


@pytest.mark.parametrize("bulk_threshold", ["50000", "0"], ids=["rest", "bulk"])
def test_every_value_and_file_comes_back_exactly(
    org: tuple[Path, FakeOrgServer], home: Path, monkeypatch: pytest.MonkeyPatch, bulk_threshold: str
) -> None:
    folder, fake = org
    job = backup(home, fake, monkeypatch, bulk_threshold)
    assert job["status"] == "completed", job
    bdir = Path(job["backup_directory"])
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    for name, obj in load_objects(folder).items():
        entry = manifest["objects"][name]
        if name in REFUSED:
            assert entry["status"] == "skipped" and REFUSED[name] in entry["reason"], entry
            assert not (bdir / "data" / f"{name}.csv").exists()
            continue
        path = bdir / "data" / f"{name}.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, strict=True))
        header, body = rows[0], rows[1:]
        compounds = {f["name"] for f in obj.fields if f["type"] in ("address", "location")}
        wanted = [f["name"] for f in obj.fields if f["type"] != "base64" and f["name"] not in compounds]
        assert header == wanted, name
        assert len(body) == len(obj.records) == entry["records"], name
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        by_id = {r[0]: dict(zip(header, r, strict=True)) for r in body}
        types = {f["name"]: f["type"] for f in obj.fields}
        for record in obj.records:
            row = by_id[record["Id"]]
            for field in wanted:
                assert row[field] == expected_cell(record.get(field), types[field]), (name, record["Id"], field)
    expected = blobs(folder)
    if not expected:
        return
    with open(bdir / "files" / "index.csv", encoding="utf-8", newline="") as fh:
        index = {(r["object"], r["record_id"], r["field"]): r for r in csv.DictReader(fh)}
    assert set(index) == set(expected)
    for (obj_name, record_id, _), sha in expected.items():
        row = index[(obj_name, record_id, _)]
        assert row["path"].startswith(f"files/{obj_name}/{record_id}"), row["path"]
        assert hashlib.sha256((bdir / row["path"]).read_bytes()).hexdigest() == sha == row["sha256"]
    assert manifest["files"]["count"] == len(expected)
    assert [p for p in home.rglob("escape-attempt*")] == []  # names never become paths


def test_zero_byte_bodies_and_odd_extensions_are_kept_as_such(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_fake_org(ORGS / "nasty") as fake:
        bdir = Path(backup(home, fake, monkeypatch, "50000")["backup_directory"])
    with open(bdir / "files" / "index.csv", encoding="utf-8", newline="") as fh:
        index = list(csv.DictReader(fh))
    names = {(r["object"], r["name"]): Path(r["path"]).name for r in index}
    cv = {name: path for (obj, name), path in names.items() if obj == "ContentVersion"}
    assert cv["empty.txt"].endswith(".txt") and (bdir / "files/ContentVersion" / cv["empty.txt"]).stat().st_size == 0
    assert cv["résumé final (2).PDF"].endswith(".pdf")
    assert "." not in cv["no extension"]
    assert "." not in cv["a.averyveryverylongextension"]  # over 16 characters: no extension at all
