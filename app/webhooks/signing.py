"""Signing webhooks: Standard Webhooks headers, made by the ``standardwebhooks`` library, with
one signature per secret that signs now (two while a rotated-out secret overlaps).
"""

from __future__ import annotations

import base64
import secrets as random_bytes
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook


def new_secret() -> str:
    """A ``whsec_`` secret: 32 random bytes, base64 (what Standard Webhooks libraries read)."""
    return "whsec_" + base64.b64encode(random_bytes.token_bytes(32)).decode()


def signing_secrets(subscription: Mapping[Any, Any], now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    signing = [subscription["secret"]]
    until = subscription["previous_secret_until"]
    if subscription["previous_secret"] and until is not None and until > now:
        signing.append(subscription["previous_secret"])
    return signing


def webhook_headers(
    *, message_id: str, body: str, secrets: Sequence[str], now: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: one ``v1,`` signature per ``whsec_`` secret
    (two while a rotated-out secret still signs), separated by spaces."""
    if now.tzinfo is None:  # a naive time would be read as local time
        raise ValueError("expected a timezone-aware datetime")
    moment = now.astimezone(UTC)
    signatures = [Webhook(secret).sign(message_id, moment, body) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
