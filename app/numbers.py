"""Whole numbers written by someone else: headers, query parameters, paths, settings.

``int()`` is too generous for them: it takes other scripts' digits (``int("٣") == 3``),
signs, spaces and underscores, and refuses more than 4,300 digits with a ``ValueError``
that callers rarely expect. ``natural`` takes ASCII digits only, up to a bound.
"""

from __future__ import annotations

INT64_MAX = 2**63 - 1  # PostgreSQL's bigint


def natural(raw: str, maximum: int = INT64_MAX) -> int | None:
    """``raw`` as a whole number from 0 to ``maximum`` in ASCII digits; None otherwise."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None
