"""The frozen upcasting corpus: every historical (type, schema_version), as stored, still projects the same.

fixtures/corpus/record.py recorded each case once, with the code of its day; the hashes below
make any edit of a corpus file fail. A payload change needs a new schema version, an upcaster and
a new corpus case, never an edited one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from events import EventLog, NewEvent
from events.chain import GENESIS_HASH, ChainFields, canonical_json, event_hash
from events.codec import decode
from events.streamfile import read_lines
from events.vocabulary import PAYLOAD_CLASSES
from projections import ProjectionStore, replay

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"

PINNED = {
    "v1_every_type.jsonl": "75e02894084c9d381187cc45152d19c62499b61fbcc7a7ff1a66745f088b2bcb",
    "v1_every_type.expected.json": "8afbc913267b92647eb31c62fc9f440595e1a2599e8443a33ddfde427863295a",
    "v2_progress.jsonl": "8a3617d8c75448a5e73fe418063e556a6e115130490bc6a4ec69a0470fd18617",
    "v2_progress.expected.json": "f8d3115901d9cfbf216235c16384090ceda9956426dd4f53fabef184dd9d0176",
    "v2_requested.jsonl": "1c3cd05b0e4e24067b98ad49e48a76ebedde092b4b00d19a981f204223f104db",
    "v2_requested.expected.json": "26d006e6cc72adc908afa8aaf3b91db271f2861e759f2c534b7de90fb7bca1ff",
    "v3_progress.jsonl": "1b1069c18ecdd2ba214e8d48692abcad0f45bc6d0eb6cc6e9137f7bf6da5d6e1",
    "v3_progress.expected.json": "fede37ef5fae64bf839e86763dc93e1f3da70e0763b2d8bf8879bbff6ddfcee0",
}
CASES = sorted(name.removesuffix(".jsonl") for name in PINNED if name.endswith(".jsonl"))

# Job-status fields the projection gained after a case was recorded, and the value the case's
# (older) events must give each job. Every other field must equal the recorded projection exactly.
ADDED_SINCE_RECORDED: dict[str, dict[str, dict[str, Any]]] = {
    # files_total (job.progress v2): v1 progress never said it.
    "v1_every_type": {
        "01jxa000000000000000000000": {"files_total": None},
        "01jxb000000000000000000000": {"files_total": None},
        "01jxc000000000000000000000": {"files_total": None},
    },
}


def lines_of(case: str) -> list[str]:
    return (CORPUS / f"{case}.jsonl").read_text(encoding="utf-8").splitlines()


def test_corpus_files_are_exactly_the_pinned_ones_and_unchanged() -> None:
    present = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".jsonl", ".json"))
    assert present == sorted(PINNED)
    for name, digest in PINNED.items():
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == digest, f"{name} was edited"


def test_corpus_holds_every_schema_version_of_every_event_type() -> None:
    seen = {(e.type, e.schema_version) for case in CASES for e in read_lines(lines_of(case))}
    wanted = {(cls.TYPE, v) for cls in PAYLOAD_CLASSES for v in range(1, cls.SCHEMA_VERSION + 1)}
    assert wanted - seen == set(), "record a corpus case for each new schema version"


@pytest.mark.parametrize("case", CASES)
def test_corpus_lines_are_events_as_stored_with_their_hash_chain(case: str) -> None:
    prev = GENESIS_HASH
    for e in read_lines(lines_of(case)):
        fields = ChainFields(
            event_id=e.event_id,
            stream_id=e.stream_id,
            stream_version=e.stream_version,
            type=e.type,
            schema_version=e.schema_version,
            data=canonical_json(e.data),
            metadata=canonical_json(e.metadata),
            correlation_id=e.correlation_id,
            causation_id=e.causation_id,
            occurred_at=e.occurred_at,
        )
        assert event_hash(prev, fields).hex() == e.hash, f"position {e.position}"
        prev = bytes.fromhex(e.hash)


@pytest.mark.parametrize("case", CASES)
def test_every_corpus_event_decodes_with_todays_code(case: str) -> None:
    for e in read_lines(lines_of(case)):
        assert e.type == type(decode(e)).TYPE


@pytest.mark.parametrize("case", CASES)
def test_corpus_replays_to_its_recorded_projection(case: str) -> None:
    recorded = json.loads((CORPUS / f"{case}.expected.json").read_text(encoding="utf-8"))
    actual = replay(lines_of(case))
    added = ADDED_SINCE_RECORDED.get(case, {})
    assert actual["jobs"] == {job_id: {**job, **added.get(job_id, {})} for job_id, job in recorded["jobs"].items()}
    assert actual["catalog"] == recorded["catalog"]


@pytest.mark.parametrize("case", CASES)
def test_the_store_upcasts_stored_events_on_read_and_never_rewrites_them(case: str, tmp_path: Path) -> None:
    lines = lines_of(case)
    with EventLog.open(tmp_path / "events.db") as log:
        for e in read_lines(lines):
            new = NewEvent(
                e.type,
                e.data,
                metadata=e.metadata,
                event_id=e.event_id,
                schema_version=e.schema_version,
                correlation_id=e.correlation_id,
                causation_id=e.causation_id,
                occurred_at=e.occurred_at,
            )
            log.append(e.stream_id, [new], expected_version=e.stream_version - 1)
        store = ProjectionStore(log)
        jobs = {j.job_id: j.to_dict() for j in store.jobs(limit=100)}
        stored = [(e.schema_version, e.data, e.hash) for e in log.read_all()]
        assert log.verify().ok
    assert jobs == replay(lines)["jobs"]
    assert stored == [(e.schema_version, e.data, e.hash) for e in read_lines(lines)]
