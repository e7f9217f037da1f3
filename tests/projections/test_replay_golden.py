import ast
import datetime
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

import pytest

from events import EventLog, NewEvent
from events.streamfile import read_lines
from projections import ProjectionStore, render, replay

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"
ROOT = STREAMS.parents[1]
CASES = sorted(STREAMS.glob("*.jsonl"))


def test_there_are_at_least_four_recorded_streams() -> None:
    assert len(CASES) >= 4
    assert {p.stem for p in CASES} >= {"completed_job", "failed_job", "many_progress", "cleaned_job"}


def test_every_recorded_stream_has_its_expected_projection() -> None:
    assert sorted(p.name.removesuffix(".expected.json") for p in STREAMS.glob("*.expected.json")) == [
        p.stem for p in CASES
    ]


def test_recorded_streams_cover_every_event_type() -> None:
    from events.vocabulary import REGISTRY

    seen = {json.loads(line)["type"] for p in CASES for line in p.read_text(encoding="utf-8").splitlines() if line}
    assert seen == set(REGISTRY)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_replay_of_a_recorded_stream_equals_its_golden_file_byte_for_byte(case: Path) -> None:
    expected = case.with_name(case.stem + ".expected.json").read_bytes()
    with case.open(encoding="utf-8") as lines:
        actual = render(replay(lines)).encode("utf-8")
    assert actual == expected


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_the_store_agrees_with_replay_on_a_recorded_stream(case: Path, log: EventLog) -> None:
    lines = case.read_text(encoding="utf-8").splitlines()
    for event in read_lines(lines):
        new = NewEvent(
            event.type,
            event.data,
            metadata=event.metadata,
            schema_version=event.schema_version,
            occurred_at=event.occurred_at,
        )
        position = log.append(event.stream_id, [new], expected_version=event.stream_version - 1)
        assert position == [event.position]
    store = ProjectionStore(log)
    projection = replay(lines)
    assert {j.job_id: j.to_dict() for j in store.jobs(limit=100)} == projection["jobs"]
    assert [b.to_dict() for b in reversed(store.backups(limit=100))] == projection["catalog"]


def _boom(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("projections must not read the clock, randomness or the environment")


class _NoClock(datetime.datetime):
    now = classmethod(_boom)
    utcnow = classmethod(_boom)
    today = classmethod(_boom)


def test_replay_does_not_touch_clock_randomness_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {case: case.read_text(encoding="utf-8").splitlines() for case in CASES}
    for name in ("time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime"):
        monkeypatch.setattr(time, name, _boom)
    monkeypatch.setattr(datetime, "datetime", _NoClock)
    monkeypatch.setattr(datetime, "date", _NoClock)
    for name in ("random", "randint", "choice", "getrandbits"):
        monkeypatch.setattr(random, name, _boom)
    monkeypatch.setattr(uuid, "uuid4", _boom)
    monkeypatch.setattr(uuid, "uuid1", _boom)
    monkeypatch.setattr(os, "urandom", _boom)
    monkeypatch.setattr(os, "getenv", _boom)
    first = {case: render(replay(lines)) for case, lines in texts.items()}
    second = {case: render(replay(lines)) for case, lines in texts.items()}
    assert first == second


def test_projection_modules_import_no_clock_randomness_or_environment() -> None:
    banned = {"time", "datetime", "random", "uuid", "os", "secrets"}
    for path in (ROOT / "projections").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & banned, f"{path.name} imports {names & banned}"


def test_replay_gives_the_same_bytes_in_a_fresh_process_with_another_hash_seed() -> None:
    case = STREAMS / "two_jobs_interleaved.jsonl"
    script = (
        "import sys; from projections import replay, render; "
        "sys.stdout.buffer.write(render(replay(open(sys.argv[1], encoding='utf-8'))).encode('utf-8'))"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script, str(case)], cwd=ROOT, env=env, capture_output=True, check=True
        ).stdout
        assert out == case.with_name("two_jobs_interleaved.expected.json").read_bytes()


def test_replay_tolerates_lines_without_position_event_id_or_schema_version() -> None:
    line = json.dumps({"type": "job.requested", "stream": "job-x", "version": 1, "data": {"job_id": "x"}, "time": "t"})
    projection = replay(["", line, ""])
    assert projection["jobs"]["x"]["status"] == "requested"
    assert projection["jobs"]["x"]["last_position"] == 2
