"""Logging to stderr only: in stdio mode stdout belongs to the MCP protocol."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure_logging(level: str | None = None) -> None:
    """Send stdlib logging and structlog to stderr, once per process.

    structlog's default logger prints to stdout, which would corrupt the MCP stream, so both are
    pointed at stderr before anything else logs. ``SFBACKUP_LOG_LEVEL`` overrides the level.
    """
    global _configured
    if _configured:
        return
    name = (level or os.environ.get("SFBACKUP_LOG_LEVEL") or "WARNING").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(levelname)s %(name)s: %(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True
