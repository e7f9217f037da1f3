"""Anchors: (position, hash) pairs recorded outside the log's reach, and how one is checked.

A backup manifest stores the log head it was written at; if that position later holds another
hash, or no longer exists, the log was rewritten or truncated after the backup, however carefully
the new chain was recomputed. Pure: the caller supplies what the log holds at the position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from events.chain import GENESIS_HASH, ChainReport


@dataclass(frozen=True)
class Anchor:
    """A head recorded at ``source`` (a manifest path, a projection checkpoint)."""

    source: str
    position: int
    hash: str


@dataclass(frozen=True)
class AnchorCheck:
    """The outcome for one anchor; ``position``/``hash`` are None when the source held no usable anchor."""

    source: str
    position: int | None
    hash: str | None
    ok: bool
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def check_anchor(anchor: Anchor, *, stored_hash: str | None, head: int, chain: ChainReport) -> AnchorCheck:
    """Compare an anchor with the hash the log holds at its position (None: no such position).

    An anchor only vouches for the log if the chain is intact up to it: then equal hashes mean
    every event up to the anchor is exactly as it was when the anchor was taken.
    """

    def failed(problem: str) -> AnchorCheck:
        return AnchorCheck(anchor.source, anchor.position, anchor.hash, False, problem)

    recorded = anchor.hash.lower()
    if anchor.position == 0:
        if recorded != GENESIS_HASH.hex():
            return failed("position 0 must carry the genesis hash (32 zero bytes); this anchor is not from this log")
        return AnchorCheck(anchor.source, 0, anchor.hash, True)
    if anchor.position > head:
        return failed(
            f"records position {anchor.position}, but the log ends at position {head}: "
            f"events {head + 1}..{anchor.position} are missing (the log was truncated or replaced)"
        )
    if stored_hash is None or stored_hash.lower() != recorded:
        return failed(
            f"records hash {recorded[:16]}... at position {anchor.position}, but the log holds "
            f"{(stored_hash or 'nothing')[:16]}... there: the log was rewritten at or before position {anchor.position}"
        )
    if not chain.ok and chain.first_bad_position is not None and chain.first_bad_position <= anchor.position:
        return failed(
            f"cannot vouch for position {anchor.position}: the hash chain is already broken at position "
            f"{chain.first_bad_position}"
        )
    return AnchorCheck(anchor.source, anchor.position, anchor.hash, True)
