"""Signing webhooks: Standard Webhooks headers, with one signature per key that signs now (two
while a rotated-out key overlaps), in the subscription's scheme.

``v1``: HMAC-SHA256 with a ``whsec_`` secret, made by the ``standardwebhooks`` library.
``v1a``: ed25519 with a ``whsk_`` secret key, made with ``cryptography`` (that library signs
only ``v1``). Both sign ``{webhook-id}.{webhook-timestamp}.{body}``. A ``whsk_`` key is
``whsk_`` + base64 of the 32-byte ed25519 seed (RFC 8032's private key, what the Standard
Webhooks reference library reads), never the 64-byte seed||public form; its ``whpk_`` public
key, base64 of the 32 raw bytes, is derived from it and never stored.
"""

from __future__ import annotations

import base64
import binascii
import secrets as random_bytes
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks import Webhook

# Each scheme's signature identifier (in ``webhook-signature``) and its secrets' prefix.
PREFIXES = {"v1": "whsec_", "v1a": "whsk_"}
PUBLIC_PREFIX = "whpk_"


def new_secret(scheme: str = "v1") -> str:
    """A new secret for ``scheme``: for ``v1`` a ``whsec_`` secret, 32 random bytes, base64
    (what Standard Webhooks libraries read); for ``v1a`` a ``whsk_`` ed25519 secret key."""
    if scheme == "v1a":
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return PREFIXES["v1a"] + base64.b64encode(seed).decode()
    if scheme != "v1":
        raise ValueError(f"no signature scheme {scheme!r}")
    return PREFIXES["v1"] + base64.b64encode(random_bytes.token_bytes(32)).decode()


def public_key(secret: str) -> str:
    """The ``whpk_`` public key that verifies what the ``whsk_`` ``secret`` signs."""
    raw = _private_key(secret).public_key().public_bytes_raw()
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def signing_secrets(subscription: Mapping[Any, Any], now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    signing = [subscription["secret"]]
    until = subscription["previous_secret_until"]
    if subscription["previous_secret"] and until is not None and until > now:
        signing.append(subscription["previous_secret"])
    return signing


def webhook_headers(
    *, message_id: str, body: str, secrets: Sequence[str], now: datetime, scheme: str = "v1"
) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: one ``v1,`` (``whsec_``) or ``v1a,``
    (``whsk_``) signature per secret, as ``scheme`` says (two while a rotated-out secret still
    signs), separated by spaces. A secret of another scheme is refused, never used."""
    if now.tzinfo is None:  # a naive time would be read as local time
        raise ValueError("expected a timezone-aware datetime")
    if scheme not in PREFIXES or not all(s.startswith(PREFIXES[scheme]) for s in secrets):
        raise ValueError(f"a {scheme!r} subscription signs only with {PREFIXES.get(scheme)} keys")
    moment = now.astimezone(UTC)
    timestamp = str(int(moment.timestamp()))
    if scheme == "v1a":
        signed = f"{message_id}.{timestamp}.{body}".encode()
        signatures = [
            "v1a," + base64.b64encode(_private_key(secret).sign(signed)).decode()
            for secret in secrets
        ]
    else:
        signatures = [Webhook(secret).sign(message_id, moment, body) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(signatures),
    }


def _private_key(secret: str) -> Ed25519PrivateKey:
    if not secret.startswith(PREFIXES["v1a"]):
        raise ValueError("not a whsk_ key")
    try:
        seed = base64.b64decode(secret.removeprefix(PREFIXES["v1a"]), validate=True)
    except binascii.Error:
        raise ValueError("not a whsk_ key: its key is not base64") from None
    if len(seed) != 32:  # the message names no byte of it
        raise ValueError("not a whsk_ key: it must hold a 32-byte ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)
