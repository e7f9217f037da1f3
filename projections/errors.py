"""Errors of the projections layer: one base class for the shells to catch.

Tree::

    ProjectionError              a read model cannot be brought up to date
    ├── PoisonEventError         an event the fold cannot apply; the projection stays before it
    └── RewrittenLogError        the event at the checkpoint changed: the log was rewritten, rebuild and audit
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Base of every error raised by the ``projections`` package."""


class PoisonEventError(ProjectionError):
    """An event could not be applied; the projection is stale since the position before it."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(
            f"projection is stale since position {position - 1}: event at position {position} "
            f"cannot be applied ({reason}); fix the code or the vocabulary, then catch up again"
        )


class RewrittenLogError(ProjectionError):
    """The event the checkpoint points at has another hash than when it was applied."""

    def __init__(self, projection: str, position: int) -> None:
        self.projection = projection
        self.position = position
        super().__init__(
            f"the event at position {position}, where projection {projection!r} stopped, has changed: "
            "the log was rewritten. Run `sfbackup verify`, then `sfbackup rebuild`"
        )
