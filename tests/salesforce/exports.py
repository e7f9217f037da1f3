"""Running the export engine in-process against a fake org (no MCP, no worker), for the tests here."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

from plugin.config import Credentials
from plugin.salesforce.client import OrgClient
from plugin.salesforce.export import Exporter, ExportResult
from plugin.salesforce.options import ExportOptions
from plugin.salesforce.plan import ObjectSelection
from plugin.salesforce.progress import Progress


def session_credentials(fake: Any) -> Credentials:
    return Credentials(kind="session", instance_url=fake.instance_url, access_token=fake.access_token)


def password_credentials(fake: Any) -> Credentials:
    """A SOAP login through SF_LOGIN_URL's route, so the client can log in again by itself."""
    return Credentials(
        kind="password",
        username=fake.username,
        password=fake.password,
        security_token=fake.security_token,
        domain="login",
        login_url=fake.instance_url,
    )


class Run:
    """One export: its result, plan, progress reports and the client's login count."""

    def __init__(self, result: ExportResult, plans: list[ObjectSelection], progress: list[Progress], logins: int):
        self.result = result
        self.plans = plans
        self.progress = progress
        self.logins = logins

    @property
    def manifest(self) -> dict[str, Any]:
        return self.result.manifest

    @property
    def directory(self) -> Path:
        return self.result.directory


def export(fake: Any, target: Path, *, credentials: Credentials | None = None, **options: Any) -> Run:
    client = OrgClient(credentials or session_credentials(fake), api_version="62.0", extra_ca=Path(fake.ca_bundle))
    plans: list[ObjectSelection] = []
    progress: list[Progress] = []
    try:
        exporter = Exporter(
            client,
            client.identity(),
            ExportOptions(job_id="job1", **options),
            target,
            on_plan=plans.append,
            on_progress=progress.append,
            log_head=lambda: (7, "ab" * 32),
        )
        result = exporter.run()
        return Run(result, plans, progress, client.logins)
    finally:
        client.close()


def read_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return list(csv.DictReader(fh, strict=True))


def index_rows(directory: Path) -> dict[str, dict[str, str]]:
    return {r["record_id"]: r for r in read_rows(directory / "files" / "index.csv")}
