"""How the flows report a failure they survive: a lost database is a warning (it recovers
by itself, and a traceback would say nothing new each time), anything else an error."""

from __future__ import annotations

import logging
import sys

from app.store.engine import unavailable


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: a WARNING naming it when the database cannot do the
    work now, else an ERROR with its traceback."""
    exc = sys.exc_info()[1]
    if exc is not None and unavailable(exc):
        reason = str(exc).splitlines()[0] if str(exc) else ""
        log.warning(f"{message} (the database: %s: %s)", *args, type(exc).__name__, reason)
    else:
        log.exception(message, *args)
