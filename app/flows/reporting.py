"""How the flows report a failure they survive: a lost database is a warning (it recovers
by itself, and a traceback would say nothing new each time), anything else an error. And
what an operator must hear of even when nothing failed here: a subscription disabled or
enabled again (WARNING, whoever did it)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from app.store.engine import unavailable

subscriptions_logger = logging.getLogger("app.subscriptions")


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: a WARNING naming it when the database cannot do the
    work now, else an ERROR with its traceback."""
    exc = sys.exc_info()[1]
    if exc is not None and unavailable(exc):
        reason = str(exc).splitlines()[0] if str(exc) else ""
        log.warning(f"{message} (the database: %s: %s)", *args, type(exc).__name__, reason)
    else:
        log.exception(message, *args)


def log_disabled(subscription: Mapping[Any, Any]) -> None:
    """A WARNING that ``subscription`` was disabled, why, and until when its events queue
    (never its URL, which may carry a token, nor its secrets or headers)."""
    queue_until = subscription["queue_until"]
    subscriptions_logger.warning(
        "subscription %s is disabled: %s; its new events are queued for it until %s",
        subscription["id"],
        subscription["disabled_reason"],
        queue_until.isoformat() if queue_until else "never",
    )


def log_enabled(subscription: Mapping[Any, Any]) -> None:
    """A WARNING that ``subscription`` is enabled again."""
    subscriptions_logger.warning(
        "subscription %s is enabled again; the events queued for it are being sent",
        subscription["id"],
    )
