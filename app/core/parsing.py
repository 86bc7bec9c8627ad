"""Reading what someone else wrote: numbers, JSON, and text PostgreSQL must hold.

- ``natural``: ``int()`` is too generous for headers, query parameters, paths and settings:
  it takes other scripts' digits (``int("٣") == 3``), signs, spaces and underscores, and
  refuses more than 4,300 digits with a ``ValueError`` callers rarely expect. ``natural``
  takes ASCII digits only, up to a bound.
- ``loads``: Python's ``json`` also reads ``NaN``, ``Infinity`` and ``-Infinity``, which
  are not JSON (RFC 8259), which PostgreSQL's jsonb refuses, and which icehook would
  otherwise pass on to ICE and to subscribers.
- ``storable`` / ``postgres_text``: PostgreSQL text holds no NUL and no unpaired surrogate,
  both of which JSON can carry as escapes.
"""

from __future__ import annotations

import json
from typing import Any

INT64_MAX = 2**63 - 1  # PostgreSQL's bigint


def natural(raw: str, maximum: int = INT64_MAX) -> int | None:
    """``raw`` as a whole number from 0 to ``maximum`` in ASCII digits; None otherwise."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing ``NaN`` and the infinities with a ``ValueError`` (and, as it
    does, text nested deeper than Python goes with a ``RecursionError``)."""
    return json.loads(text, parse_constant=_refuse)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def storable(text: str) -> bool:
    """Whether PostgreSQL text can hold ``text``."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def postgres_text(value: str) -> str:
    """``value`` as PostgreSQL text can hold it: NUL and lone surrogates replaced."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
