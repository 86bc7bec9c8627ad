"""What a subscription may shape about its webhooks, as pure rules: which of the events it
wants reach it (a filter on the job's project and ``UserData``), which static headers go
with them, and how many requests it gets at once and a second.

A filter is kept in one form, ``{"project_id": [...], "user_data": {KEY: [...]}}``, every
value as text: a job passes when each key given matches, a list meaning any of its values;
a ``UserData`` value matches as its text (``42`` and ``"42"`` alike), as search does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Requests in flight at once for one subscription, across all workers, unless it says.
DEFAULT_MAX_IN_FLIGHT = 16
MAX_IN_FLIGHT_LIMIT = 1000
MAX_PER_SECOND_LIMIT = 10_000.0
# The slowest pace: one request every 100 s. (A pace is kept as when the next request may
# start; a rate near zero would put that beyond what a timestamp holds.)
MIN_PER_SECOND = 0.01

FILTER_VALUES_MAX = 100  # values a key of a filter may list
FILTER_KEYS_MAX = 20  # UserData keys a filter may name
FILTER_TEXT_MAX = 256  # characters of a key or value

HEADERS_MAX = 20
HEADER_NAME_MAX = 256
HEADER_VALUE_MAX = 4096
MASK = "********"  # what the API shows for a header's value

# An RFC 9110 token: what a header's name may be.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII, spaces and tabs inside: no CR, LF or NUL to split a request with.
HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?")

# Headers icehook sets on every webhook, or that frame the request: a subscription's own
# headers cannot replace them (the signature would no longer be Standard Webhooks', or the
# request no longer the one that was signed).
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "user-agent",
        "traceparent",
        "tracestate",
    }
)


def header_problem(name: str, value: str) -> str | None:
    """Why the header ``name: value`` cannot be one of a subscription's, or None."""
    if not HEADER_NAME.fullmatch(name) or len(name) > HEADER_NAME_MAX:
        return f"{name[:40]!r} is not a header name"
    # As a receiver may read it: a CGI or WSGI server makes "webhook_id" of "webhook-id".
    lowered = name.lower().replace("_", "-")
    if lowered in RESERVED_HEADERS or lowered.startswith(("webhook-", "proxy-", "content-")):
        return f"{name!r} is set by icehook and cannot be replaced"
    if not HEADER_VALUE.fullmatch(value) or len(value) > HEADER_VALUE_MAX:
        return f"the value of {name!r} must be printable ASCII without line breaks"
    return None


def masked(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A subscription's headers as the API shows them: names only."""
    return dict.fromkeys(headers or {}, MASK)


def as_text(value: Any) -> str:
    """A filter's value as the text a job's ``UserData`` value is compared as."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
