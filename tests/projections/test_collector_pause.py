"""Rebuild and catch-up pause the cyclic garbage collector and leave it as they found it."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import EventLog, NewEvent, job_stream
from events.codec import encode
from events.vocabulary import JobRequested
from projections import PoisonEventError, ProjectionStore


@pytest.fixture
def collector_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_during_a_fold_and_back_on_afterwards(
    tmp_path: Path, collector_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections import store as store_module

    seen: list[bool] = []
    real = store_module.ProjectionStore._apply_batch

    def spy(self: ProjectionStore, *args: object) -> None:
        seen.append(gc.isenabled())
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module.ProjectionStore, "_apply_batch", spy)
    gc.enable()
    with EventLog.open(tmp_path / "events.db") as log:
        store = ProjectionStore(log)
        log.append(job_stream("a"), [encode(JobRequested(job_id="a"))], expected_version=0)
        assert store.catch_up() == 1
        assert gc.isenabled()
        assert store.rebuild() == 1
        assert gc.isenabled()
    assert seen and not any(seen)


def test_a_collector_that_was_off_stays_off_and_a_failed_fold_turns_it_back_on(
    tmp_path: Path, collector_state: None
) -> None:
    with EventLog.open(tmp_path / "events.db") as log:
        store = ProjectionStore(log)
        log.append(job_stream("a"), [encode(JobRequested(job_id="a"))], expected_version=0)
        gc.disable()
        store.rebuild()
        assert not gc.isenabled()
        gc.enable()
        log.append(job_stream("a"), [NewEvent("job.failed", {"message": "no code"})], expected_version=1)
        with pytest.raises(PoisonEventError):
            store.catch_up()
        assert gc.isenabled()
