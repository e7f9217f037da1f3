"""Running the export engine in-process against a fake org, and reading what it wrote."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plugin.config import Credentials, ExportSettings
from plugin.fakeorg import FakeOrgServer
from plugin.salesforce.client import OrgClient
from plugin.salesforce.connect import RetryPolicy
from plugin.salesforce.export import Exporter, ExportResult
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.plan import ObjectSelection
from plugin.salesforce.progress import Progress
from plugin.salesforce.resume import ResumePoint

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "fixtures" / "orgs" / "demo"
FAST_RETRY = RetryPolicy(attempts=4, backoff=0.01, backoff_max=0.05)
NO_FILES = {"include_files": False, "include_attachments": False, "include_documents": False}
REST_ONLY = ExportSettings(bulk_threshold=10**12)
BULK_ALL = ExportSettings(bulk_threshold=0)


def session_credentials(fake: FakeOrgServer) -> Credentials:
    return Credentials(kind="session", instance_url=fake.instance_url, access_token=fake.access_token)


def password_credentials(fake: FakeOrgServer) -> Credentials:
    info = fake.info()
    return Credentials(
        kind="password",
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        domain="login",
        login_url=fake.instance_url,
    )


class Run:
    """One export: its result (or error), the plan and every progress report."""

    def __init__(self) -> None:
        self.result: ExportResult | None = None
        self.plans: list[ObjectSelection] = []
        self.progress: list[Progress] = []
        self.client: OrgClient | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        assert self.result is not None
        return self.result.manifest

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [p.object_finished for p in self.progress if p.object_finished]


def export(
    fake: FakeOrgServer,
    target: Path,
    *,
    credentials: Credentials | None = None,
    settings: ExportSettings = REST_ONLY,
    resume: ResumePoint | None = None,
    run: Run | None = None,
    api_reserve: float = 0.10,
    ahead: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
    **options: Any,
) -> Run:
    """Export the fake org into ``target``; errors propagate (``run`` keeps what happened before).

    ``ahead=False`` exports one object after another, no Bulk job created ahead (the baseline)."""
    run = run or Run()
    client = OrgClient(
        credentials or session_credentials(fake),
        api_version="62.0",
        extra_ca=Path(fake.ca_bundle),
        retry=FAST_RETRY,
        api_reserve=api_reserve,
    )
    run.client = client
    try:
        exporter = Exporter(
            client,
            client.identity(),
            ExportOptions(job_id="job-test", **{**NO_FILES, **options}),
            target,
            on_plan=run.plans.append,
            on_progress=run.progress.append,
            log_head=lambda: (1, "00" * 32),
            settings=settings,
            resume=resume,
            should_stop=should_stop,
        )
        if not ahead:
            exporter.ahead.upcoming = lambda name: None
        run.result = exporter.run()
    finally:
        client.close()
    return run


def csv_rows(path: Path) -> list[list[str]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh, strict=True))


def csv_digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((directory / "data").iterdir())}


def org_copy(source: Path, target: Path, **settings: Any) -> Path:
    """A copy of an org folder with org.json keys replaced (quirks, limits, bulk knobs, ...)."""
    shutil.copytree(source, target)
    path = target / "org.json"
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    path.write_text(json.dumps({**current, **settings}), encoding="utf-8")
    return target
