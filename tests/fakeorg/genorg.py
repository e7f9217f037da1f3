"""Building org folders with org.json generators in a temporary directory (real describes from the demo)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEMO_DESCRIBES = REPO / "fixtures" / "orgs" / "demo" / "describe"
MINI = Path(__file__).parent / "orgs" / "mini"


def generated_org(
    root: Path,
    generators: dict[str, dict[str, Any]],
    *,
    objects: tuple[str, ...] = ("Account", "Contact", "Opportunity", "Case", "Lead", "Custom__c"),
    records_from_mini: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """An org folder with demo describes of `objects` and the given generators.

    With `records_from_mini`, the mini org's describes and records/ (and blobs) are used instead,
    so file rows and generated rows are combined.
    """
    root.mkdir(parents=True)
    if records_from_mini:
        for part in ("describe", "records", "blobs"):
            shutil.copytree(MINI / part, root / part)
    else:
        (root / "describe").mkdir()
        for name in objects:
            shutil.copy(DEMO_DESCRIBES / f"{name}.json", root / "describe" / f"{name}.json")
    settings: dict[str, Any] = {"org_id": "00D000000000077", "generators": generators}
    settings.update(extra or {})
    (root / "org.json").write_text(json.dumps(settings), encoding="utf-8")
    return root
