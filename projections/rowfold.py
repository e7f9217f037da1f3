"""The store's fold of stored rows: ``catalog.fold(job_status.decoded_rows(rows))`` in one pass.

A rebuild folds every event of the log, most of them ``job.progress``; decoding each into a
``JobProgress`` and a tuple, then folding it in a second loop, was most of the rebuild's time. Here
a current-version progress row with the fields ``JobProgress.to_data`` writes (each value of its
exact type, object_finished likewise) goes straight from the parsed dict onto the
draft; every other row takes the general decode and handler. Same jobs, same catalog, and the same
``PoisonEventError`` for the same row (nothing is changed then), which
``tests/projections/test_fold_equivalence.py`` checks against the pure fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from events import InvalidEventError, UnknownEventTypeError
from events.codec import decode_stored
from events.ids import job_id_of
from events.jsontext import loads_plain
from events.records import EventRow
from events.vocabulary import OBJECT_OUTCOMES, JobCleaned, JobCompleted, JobProgress, ObjectFinished
from projections import catalog as catalog_fold
from projections import job_status
from projections.catalog import BackupEntry
from projections.errors import PoisonEventError
from projections.job_status import JobDraft, JobStatus

_PROGRESS = JobProgress.TYPE
_PROGRESS_VERSION = JobProgress.SCHEMA_VERSION
# The keys of JobProgress.to_data() as canonical JSON stores them (sorted), and the value types
# for which from_data returns those very values (its own fast path): current_object and
# files_total may be None; object_finished must be None (a finished object counts skips).
_PROGRESS_KEYS = tuple(sorted(JobProgress().to_data()))
_INT, _STR, _NONE, _DICT = int, str, type(None), dict
_PROGRESS_SHAPES = frozenset(
    (_INT, current, _INT, files_total, finished, _INT, _INT, _INT, _STR, _INT)
    for current in (_STR, _NONE)
    for files_total in (_INT, _NONE)
    for finished in (_NONE, _DICT)
)
# The same for object_finished (ObjectFinished.from_data keeps exact values; its status is checked).
_FINISHED_KEYS = tuple(sorted(ObjectFinished("x").to_data()))
_FINISHED_SHAPES = frozenset(
    (method, _STR, reason, _INT, sha256, _STR)
    for method in (_STR, _NONE)
    for reason in (_STR, _NONE)
    for sha256 in (_STR, _NONE)
)
assert _PROGRESS_KEYS == (
    "bytes",
    "current_object",
    "files",
    "files_total",
    "object_finished",
    "objects_done",
    "objects_total",
    "percent",
    "phase",
    "records",
)
_PROGRESS_SIZE = len(_PROGRESS_KEYS)
_progress_values = itemgetter(*_PROGRESS_KEYS)
assert _FINISHED_KEYS == ("method", "object", "reason", "records", "sha256", "status")


def _finished_skipped(finished: dict[str, object]) -> bool | None:
    """Whether an object_finished in to_data's shape says skipped; None if it is in another shape."""
    if tuple(finished) != _FINISHED_KEYS or tuple(map(type, finished.values())) not in _FINISHED_SHAPES:
        return None
    status = finished["status"]
    if status not in OBJECT_OUTCOMES:
        return None  # the general path raises the payload error
    return status == "skipped"


def fold_rows(rows: Iterable[EventRow], *, jobs: dict[str, JobStatus], catalog: dict[str, BackupEntry]) -> set[str]:
    """Fold stored rows (position order) into ``jobs`` and ``catalog`` in place; return the jobs touched.

    Raises:
        PoisonEventError: a payload cannot be decoded; ``jobs`` and ``catalog`` are left as they were.
    """
    drafts: dict[str, JobDraft] = {}
    entries: dict[str, BackupEntry] = {}  # catalog changes, applied once every row has folded
    handlers = job_status.HANDLERS
    job_ids: dict[str, str | None] = {}
    last_stream = ""
    job_id: str | None = None
    draft: JobDraft | None = None
    for position, stream_id, stream_version, event_type, schema_version, data, occurred_at in rows:
        if stream_id != last_stream:  # a job's events mostly come in runs: look it up once per run
            job_id = job_ids[stream_id] if stream_id in job_ids else job_ids.setdefault(stream_id, job_id_of(stream_id))
            last_stream = stream_id
            if job_id is not None:
                draft = drafts.get(job_id)
                if draft is None:
                    known = jobs.get(job_id)
                    start = known if known is not None else JobStatus(job_id=job_id, first_position=position)
                    draft = drafts[job_id] = JobDraft(start)
        if job_id is None:
            continue
        assert draft is not None
        if event_type == _PROGRESS and schema_version == _PROGRESS_VERSION:
            try:
                values = loads_plain(data)
            except ValueError:
                values = None  # the general path below reports it
            row = None
            if type(values) is dict and len(values) == _PROGRESS_SIZE:
                try:  # noqa: SIM105 (contextlib.suppress costs more than the lookup it guards)
                    row = _progress_values(values)  # the values in _PROGRESS_KEYS order, in one C call
                except KeyError:
                    pass  # another shape: the general path
            if row is not None:
                finished = row[4]
                skipped = False if finished is None else _finished_skipped(finished) if type(finished) is dict else None
                if skipped is not None and tuple(map(type, row)) in _PROGRESS_SHAPES:
                    # job_status._on_progress, written out.
                    size, current, files, files_total, _, done, total, percent, phase, records = row
                    status = draft.status
                    if status == "requested" or status == "running":
                        if skipped:  # Salesforce refused the object at query time
                            draft.skipped += 1
                        draft.status = "running"
                        draft.phase = phase
                        draft.objects_done = done
                        draft.objects_total = total or draft.objects_total
                        draft.current_object = current
                        draft.records = records
                        draft.files = files
                        if files_total is not None:
                            draft.files_total = files_total
                        draft.bytes = size
                        percent = 0 if percent < 0 else 100 if percent > 100 else percent
                        if percent > draft.percent:  # never goes back
                            draft.percent = percent
                    draft.last_position = position
                    draft.version = stream_version
                    continue
        try:
            payload = decode_stored(event_type, schema_version, data)
        except (InvalidEventError, UnknownEventTypeError) as e:
            raise PoisonEventError(position, str(e)) from e
        kind = type(payload)
        handlers[kind](draft, payload, occurred_at)
        draft.last_position = position
        draft.version = stream_version
        if kind is JobCompleted or kind is JobCleaned:
            entry = catalog_fold.entry_after(
                entries.get(job_id, catalog.get(job_id)), payload, position, occurred_at, draft
            )
            if entry is not None:
                entries[job_id] = entry
    catalog.update(entries)
    for touched, found in drafts.items():
        jobs[touched] = found.freeze()
    return set(drafts)
