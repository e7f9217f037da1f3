"""Replay mode: vcrpy cassettes served to unmodified simple-salesforce, host and API version
normalised, unrecorded requests answered 404 and listed as misses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import vcr
import yaml
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from plugin.fakeorg import FakeOrgError, FakeOrgServer, sf_id
from plugin.fakeorg.client import client_session

REPO = Path(__file__).resolve().parents[2]
MINI = Path(__file__).parent / "orgs" / "mini"
CASSETTE = REPO / "fixtures" / "cassettes" / "mini.yaml"
QUERY = "SELECT Id, Name, AnnualRevenue FROM Account"


@pytest.fixture(scope="module")
def live() -> Iterator[FakeOrgServer]:
    with FakeOrgServer(MINI, page_size=7) as server:
        yield server


@pytest.fixture(scope="module")
def replay() -> Iterator[FakeOrgServer]:
    with FakeOrgServer(MINI, replay=[CASSETTE]) as server:
        yield server


def _login(fake: FakeOrgServer, version: str = "62.0") -> Iterator[Salesforce]:
    with fake.client_session() as session:
        yield Salesforce(
            username=fake.username,
            password=fake.password,
            security_token=fake.security_token,
            session=session,
            version=version,
        )


def test_the_recorded_cassette_answers_like_the_org(live: FakeOrgServer, replay: FakeOrgServer) -> None:
    replay.reset()
    for real, replayed in zip(_login(live), _login(replay), strict=True):
        assert replayed.sf_instance == replay.instance_url.removeprefix("https://")  # serverUrl rewritten
        assert replayed.describe() == real.describe()
        assert replayed.restful("sobjects/Attachment/describe") == real.restful("sobjects/Attachment/describe")
        rows = list(replayed.query_all_iter(QUERY, include_deleted=True))
        assert rows == list(real.query_all_iter(QUERY, include_deleted=True)) and len(rows) == 20
        url = f"sobjects/Attachment/{sf_id('00P', 1)}/Body"
        body = replayed.session.get(replayed.base_url + url, headers=replayed.headers).content
        assert body == (MINI / "blobs" / "Attachment" / sf_id("00P", 1) / "Body").read_bytes()
    state = replay.snapshot()
    assert state["misses"] == [] and state["api_calls"] == 6  # login not counted


def test_versions_and_hosts_are_normalised(replay: FakeOrgServer) -> None:
    replay.reset()
    for sf in _login(replay, version="60.0"):
        described = sf.describe()
        assert described["sobjects"][0]["urls"]["describe"] == "/services/data/v60.0/sobjects/Account/describe"
        first = sf.query(QUERY.replace(", ", ",  "), include_deleted=True)  # whitespace in values is normalised
        assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g")
        assert len(list(sf.query_all_iter(QUERY, include_deleted=True))) == 20


def test_unrecorded_requests_are_404_misses(replay: FakeOrgServer) -> None:
    replay.reset()
    for sf in _login(replay):
        with pytest.raises(SalesforceResourceNotFound) as info:
            sf.query("SELECT Id FROM Contact")
        assert info.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    assert replay.snapshot()["misses"] == ["GET /services/data/v62.0/query/?q=SELECT+Id+FROM+Contact"]


def test_faults_apply_to_replayed_answers(replay: FakeOrgServer) -> None:
    replay.reset()
    replay.add_fault({"action": "respond", "error_code": "QUERY_TIMEOUT", "path": "/query", "nth": 1})
    for sf in _login(replay):
        with pytest.raises(SalesforceMalformedRequest, match="QUERY_TIMEOUT"):
            sf.query("SELECT Id FROM Organization")
        assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1


def test_a_fresh_vcrpy_recording_replays(tmp_path: Path, live: FakeOrgServer) -> None:
    cassette = tmp_path / "fresh.yaml"
    recorder = vcr.VCR(record_mode="all", filter_headers=["Authorization"])
    with live.client_session() as session, recorder.use_cassette(str(cassette)):
        sf = Salesforce(instance_url=live.instance_url, session_id=live.access_token, session=session, version="62.0")
        first, second = sf.limits(), sf.limits()
    assert first != second  # each call used one more request
    with FakeOrgServer(MINI, replay=[cassette]) as fake, fake.client_session() as session:
        sf = Salesforce(instance_url=fake.instance_url, session_id="anything", session=session, version="62.0")
        assert [sf.limits(), sf.limits(), sf.limits()] == [first, second, second]  # in order, then the last


def test_cumulusci_include_file_interactions(tmp_path: Path) -> None:
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "describe_global.yaml").write_text(yaml.safe_dump(data["interactions"][1]), encoding="utf-8")
    data["interactions"][1] = {"include_file": "describe_global.yaml"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with FakeOrgServer(MINI, replay=[tmp_path / "c.yaml"], include_dir=shared) as fake:
        for sf in _login(fake):
            assert [o["name"] for o in sf.describe()["sobjects"]] == [
                "Account",
                "Attachment",
                "Contact",
                "Organization",
            ]
    with pytest.raises(FakeOrgError, match=r"includes describe_global\.yaml, not found"):
        FakeOrgServer(MINI, replay=[tmp_path / "c.yaml"])


def test_bad_cassettes_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("interactions: [{request: {}}]", encoding="utf-8")
    with pytest.raises(FakeOrgError, match="interaction 1: not a vcrpy interaction"):
        FakeOrgServer(MINI, replay=[tmp_path / "a.yaml"])
    (tmp_path / "b.yaml").write_text("just: [text", encoding="utf-8")
    with pytest.raises(FakeOrgError, match="is not valid YAML"):
        FakeOrgServer(MINI, replay=[tmp_path / "b.yaml"])


def test_fake_org_serve_replays_a_cassette_in_another_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "fake-org", "serve", "--org", str(MINI), "--replay", str(CASSETTE)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with client_session(info["instance_url"], info["ca_bundle"]) as session:
            base = info["instance_url"] + "/services/data/v62.0/"
            described = session.get(base + "sobjects", headers={"Authorization": "Bearer x"}, timeout=10)
            assert [o["name"] for o in described.json()["sobjects"]][:2] == ["Account", "Attachment"]
            assert session.get(base + "limits", timeout=10).status_code == 404
            state = session.get(info["instance_url"] + "/__fake__/state", timeout=10).json()
        assert state["misses"] == ["GET /services/data/v62.0/limits"] and state["api_calls"] == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
