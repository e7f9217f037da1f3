"""The exporter's describes: 25 objects to a Composite request, fetched at the turn of the first
object not described yet, the same describe files, and every API call accounted for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from plugin.config import ExportSettings
from plugin.fakeorg import FakeOrgServer, start_fake_org
from plugin.salesforce.client import OrgClient
from plugin.salesforce.errors import ExportStoppedError
from plugin.salesforce.export import Exporter
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.progress import Progress
from tests.salesforce.exporting import DEMO, FAST_RETRY, NO_FILES, export, session_credentials
from tests.salesforce.test_composite import THINGS, wide_org

V = "/services/data/v62.0"


def direct_describe(fake: FakeOrgServer, name: str) -> bytes:
    with requests.Session() as session:
        session.trust_env = False
        url = f"{fake.instance_url}{V}/sobjects/{name}/describe"
        headers = {"Authorization": f"Bearer {fake.access_token}", "X-PrettyPrint": "1"}
        return session.get(url, headers=headers, verify=str(fake.ca_bundle)).content


def test_a_demo_backup_describes_its_twelve_objects_in_one_api_call(tmp_path: Path) -> None:
    """130 API calls before (one describe per object), 119 with the describes in one call, 111 now with
    the small objects' first pages five to a call: setup 3 (identity, describeGlobal, recordCount),
    describes 1, records 17, file bodies 90."""
    with start_fake_org(DEMO, page_size=250) as fake:
        run = export(fake, tmp_path / "b", settings=ExportSettings(), **dict.fromkeys(NO_FILES, True))
        assert run.result is not None
        manifest = run.manifest
        assert manifest["api_calls"] == fake.api_calls == 111
        breakdown = manifest["api_calls_breakdown"]
        assert breakdown == {"setup": 3, "describes": 1, "objects": 17, "deleted": 0, "files": 90}
        assert sum(breakdown.values()) == manifest["api_calls"]
        objects = manifest["objects"]
        assert len(objects) == 12 and sum(e["api_calls"] for e in objects.values()) == breakdown["objects"]
        # Its first page with four more objects' in one call, then its two more pages of 250 (it was 4 with
        # its describe); Attachment's one page came in that call.
        assert (objects["Account"]["api_calls"], objects["Attachment"]["api_calls"]) == (3, 0)
        assert composite_kinds(fake.request_log) == [["describe"] * 12, ["queryAll"] * 5, ["queryAll"] * 5]
        for name in objects:  # byte for byte what each describe call sends on its own
            saved = (run.result.directory / "describe" / f"{name}.json").read_bytes()
            assert saved == direct_describe(fake, name), name


def composite_kinds(log: list[Any]) -> list[list[str]]:
    """Per composite request, what its subrequests were (logged just before it): describe or queryAll."""
    kinds: list[list[str]] = []
    for n, entry in enumerate(log):
        if entry.path == f"{V}/composite":
            subs: list[str] = []
            for before in reversed(log[:n]):
                if not before.composite:
                    break
                subs.insert(
                    0, "describe" if before.path.endswith("/describe") else before.path.rstrip("/").rsplit("/", 1)[-1]
                )
            kinds.append(subs)
    return kinds


def describe_posts(log: list[Any]) -> list[int]:
    """Where in the log the composite requests of describes are."""
    posts = [n for n, e in enumerate(log) if e.path == f"{V}/composite"]
    return [n for n, kind in zip(posts, composite_kinds(log), strict=True) if kind and kind[0] == "describe"]


def test_a_wide_org_is_described_25_objects_a_call_each_batch_at_its_first_objects_turn(tmp_path: Path) -> None:
    with start_fake_org(wide_org(tmp_path / "org")) as fake:
        run = export(fake, tmp_path / "b")
        planned = run.plans[0].objects
        log = fake.request_log
    assert run.result is not None and len(planned) == 30 and planned[-1] in THINGS
    assert run.manifest["api_calls_breakdown"]["describes"] == 2
    posts = describe_posts(log)
    queried = {e.sobject: n for n, e in enumerate(log) if e.path.rstrip("/").endswith("/queryAll")}
    # The second request goes out after the 25th object's records and before the 26th's.
    assert len(posts) == 2 and queried[planned[24]] < posts[1] < queried[planned[25]]
    assert [e.sobject for e in log[posts[1] - 5 : posts[1]]] == planned[25:]


def test_a_stop_asked_for_during_the_25th_object_sends_no_second_composite_request(tmp_path: Path) -> None:
    progress: list[Progress] = []
    with start_fake_org(wide_org(tmp_path / "org")) as fake:
        client = OrgClient(session_credentials(fake), api_version="62.0", extra_ca=fake.ca_bundle, retry=FAST_RETRY)
        try:
            exporter = Exporter(
                client,
                client.identity(),
                ExportOptions(job_id="job-stop", **NO_FILES),
                tmp_path / "b",
                on_plan=lambda selection: None,
                on_progress=progress.append,
                log_head=lambda: (1, "00" * 32),
                should_stop=lambda: sum(1 for p in progress if p.object_finished) >= 25,
            )
            with pytest.raises(ExportStoppedError):
                exporter.run()
        finally:
            client.close()
        assert len(describe_posts(fake.request_log)) == 1
