"""JSON as RFC 8259 has it: Python's ``json`` also reads ``NaN``, ``Infinity`` and
``-Infinity``, which are not JSON, which PostgreSQL's jsonb refuses and which icehook would
otherwise pass on to ICE and to subscribers."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing ``NaN`` and the infinities with a ``ValueError`` (and, as it
    does, text nested deeper than Python goes with a ``RecursionError``)."""
    return json.loads(text, parse_constant=_refuse)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")
