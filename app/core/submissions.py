"""A submission as ICE will take it: its parameters, and ICE's limits on them.

ICE keeps ``UserData`` to 512 bytes, and icehook adds ``NotifyAddress`` to it
(``user_data_text``). Every parameter but ``Timeline`` travels in the query string, which
icehook keeps under ``MAX_QUERY_BYTES`` (``oversized``): ICE documents no limit, httpx
refuses URLs over 64 KiB, and gateways commonly refuse far less.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.core.errors import ValidationError
from app.core.statuses import JobKind

USER_DATA_MAX_BYTES = 512  # ICE's limit on UserData
FORM_PARAMETERS = frozenset({"Timeline"})  # sent in a form body; every other in the query
MAX_QUERY_BYTES = 32 * 1024
SIGNING_QUERY_BYTES = 512  # what signing adds to the query (V2's is the longest)


@dataclass(frozen=True)
class Submission:
    """A validated submission: ICE parameters as strings, without UserData, and the client's
    own UserData (icehook adds NotifyAddress when it submits)."""

    kind: JobKind
    parameters: dict[str, str]
    user_data: dict[str, Any]
    project_id: str | None


def user_data_text(user_data: Mapping[str, Any], notify_address: str) -> str:
    """The UserData icehook sends: the client's keys plus NotifyAddress, within ICE's 512 bytes."""
    merged = json.dumps(
        {**user_data, "NotifyAddress": notify_address}, ensure_ascii=False, separators=(",", ":")
    )
    size = len(merged.encode())
    if size > USER_DATA_MAX_BYTES:
        own = len(json.dumps(dict(user_data), ensure_ascii=False, separators=(",", ":")).encode())
        allowed = USER_DATA_MAX_BYTES - (size - own)
        raise ValidationError(
            "UserData",
            f"is {own} bytes; with the NotifyAddress icehook adds, ICE's 512-byte limit "
            f"leaves {allowed} bytes for your own data",
        )
    return merged


def oversized(parameters: Mapping[str, str]) -> str | None:
    """The largest query-string parameter when ``parameters`` would make a query string over
    ``MAX_QUERY_BYTES`` (None: they fit)."""
    query = {k: v for k, v in parameters.items() if k not in FORM_PARAMETERS}
    if not query or len(urlencode(query)) + SIGNING_QUERY_BYTES <= MAX_QUERY_BYTES:
        return None
    return max(query, key=lambda name: len(query[name]))
