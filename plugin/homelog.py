"""Opening a home's event log, so an unusable SFBACKUP_HOME or a damaged events.db is one clear
``HomeError`` (which folder, what is wrong, what to do) in every shell instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from events import EventLog
from events.errors import LogIntegrityError
from plugin.errors import HomeError

RESTORE = "Copy the file aside for inspection, restore events.db from a backup copy, then run `sfbackup rebuild`."


def open_event_log(path: Path) -> EventLog:
    """Create the home (owner-only) if needed and open ``path``, its ``events.db``.

    Raises:
        HomeError: the folder cannot be created or written, or the file is not a log we can trust.
        StoreBusyError: another process held the lock past the busy timeout (try again).
    """
    home = path.parent
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return EventLog.open(path)
    except OSError as e:
        raise HomeError(
            f"SFBACKUP_HOME {home} cannot be used: {e.strerror or e}. Point SFBACKUP_HOME (or --home) at a "
            "folder this user can create and write."
        ) from e
    except LogIntegrityError as e:
        raise HomeError(f"{e}. Run `sfbackup verify` to see what is wrong. {RESTORE}") from e
