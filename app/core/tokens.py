"""Callback tokens: each job's own credential in its ``NotifyAddress``, and keeping it out of
everything stored.

Every job gets 256 random bits, sent to ICE in ``UserData.NotifyAddress``
(``{public_url}/callbacks/ice/{token}``); only its SHA-256 is kept. ICE repeats UserData in
its answers and callbacks, so stored parameters, answers and callback bodies have it
replaced (``redacted``, ``without_token``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

CALLBACK_PATH = "/callbacks/ice/"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
REDACTED = "<redacted>"
# A callback's token in a body, as it is, URL-encoded, or with JSON-escaped slashes, matched
# in the lower-cased body. The pattern starts with its literal, which the regex engine finds
# fast; the separator before it is checked by hand (a pattern that starts with the
# separator's alternatives tries each at every byte, three times slower on a callback).
_TOKEN_AFTER_CALLBACKS = re.compile(rb"callbacks(?:/|\\/|%2f)ice(?:/|\\/|%2f)([a-z0-9_-]+)")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def callback_url(public_url: str | None, token: str) -> str:
    """The NotifyAddress of the job whose callback token is ``token``."""
    return f"{public_url or DEFAULT_PUBLIC_URL}{CALLBACK_PATH}{token}"


def client_token(job_id: uuid.UUID) -> str:
    """A single job's ``ClientToken``, derived from its id: a resubmission repeats it."""
    return f"icehook-{job_id.hex}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def request_hash(body: Mapping[str, Any]) -> bytes:
    """What makes two requests with one Idempotency-Key "the same"."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()


def notify_address(user_data: str | None) -> str | None:
    """The ``NotifyAddress`` in a ``UserData`` text, however it was re-serialised (ICE may
    give UserData back with other spacing and key order: docs/ice.md); None without one."""
    try:
        value = json.loads(user_data or "")
    except (ValueError, RecursionError):
        return None
    address = value.get("NotifyAddress") if isinstance(value, dict) else None
    return address if isinstance(address, str) else None


def token_hash_in(user_data: str | None) -> bytes | None:
    """The hash of the callback token in ``user_data``'s NotifyAddress: what recognises a
    job or batch ICE lists as one of icehook's, and whose (None: not one of icehook's)."""
    address = notify_address(user_data)
    if address is None or CALLBACK_PATH not in address:
        return None
    return token_hash(address.rsplit(CALLBACK_PATH, 1)[1])


def redacted(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with the callback token taken out of UserData's NotifyAddress."""
    try:
        user_data = json.loads(parameters.get("UserData") or "{}")
    except ValueError:
        return dict(parameters)
    address = str(user_data.get("NotifyAddress", ""))
    if CALLBACK_PATH in address:
        user_data["NotifyAddress"] = address.split(CALLBACK_PATH)[0] + CALLBACK_PATH + REDACTED
    return {**parameters, "UserData": json.dumps(user_data, ensure_ascii=False)}


def without_token(body: bytes, token: str) -> bytes:
    """``body`` with the callback token of its path, and anything shaped like one in a
    callback URL (any case), replaced by ``<token>``: a stored callback holds no credential."""
    if len(token) >= 16:  # icehook's own are 43 characters; a short one may be any text
        body = body.replace(token.encode(), b"<token>")
    lowered = body.lower()  # the same length: positions in it are positions in ``body``
    parts: list[bytes] = []
    kept_from = 0
    for match in _TOKEN_AFTER_CALLBACKS.finditer(lowered):
        start = match.start()
        if lowered.endswith(b"/", 0, start) or lowered.endswith(b"%2f", 0, start):
            parts += (body[kept_from : match.start(1)], b"<token>")
            kept_from = match.end(1)
    if not parts:
        return body
    parts.append(body[kept_from:])
    return b"".join(parts)
