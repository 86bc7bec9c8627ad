"""Short-lived STS credentials, as a RAM role's are: ``GET /_sim/sts`` issues one in the
shape Alibaba Cloud's credentials URI answers (``ALIBABA_CLOUD_CREDENTIALS_URI``), and ICE
calls signed with it are refused once it has expired, so a client's renewal is tested."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.simulator.wire import IceFault

MAX_KEPT = 10_000  # issued credentials remembered; the oldest are forgotten


@dataclass(frozen=True)
class Issued:
    secret: str = field(repr=False)
    token: str = field(repr=False)
    expires: float  # wall-clock seconds


class StsIssuer:
    """The STS credentials issued so far; counts how many, and the calls refused for them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._issued: dict[str, Issued] = {}
        self.issued = 0
        self.refused = 0

    def issue(self, seconds: float) -> dict[str, str]:
        """A new credential valid for ``seconds``, as a credentials URI answers it."""
        key_id = "STS." + secrets.token_hex(12)
        credential = Issued(
            secrets.token_urlsafe(24), "CAIS" + secrets.token_urlsafe(48), self._clock() + seconds
        )
        self._issued[key_id] = credential
        while len(self._issued) > MAX_KEPT:
            del self._issued[next(iter(self._issued))]
        self.issued += 1
        return {
            "Code": "Success",
            "AccessKeyId": key_id,
            "AccessKeySecret": credential.secret,
            "SecurityToken": credential.token,
            # To the second, rounded down, as Alibaba's are written.
            "Expiration": datetime.fromtimestamp(credential.expires, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }

    def secret_for(self, key_id: str) -> str | None:
        credential = self._issued.get(key_id)
        return credential.secret if credential else None

    def check(self, key_id: str, token: str | None) -> None:
        """Refuse a call signed with issued ``key_id`` but a wrong or expired token."""
        credential = self._issued.get(key_id)
        if credential is None:
            return  # a long-term AccessKey, not ours to judge
        if token is None or not hmac.compare_digest(token, credential.token):
            self.refused += 1
            raise IceFault(
                403,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The security token does not match the AccessKey.",
            )
        if self._clock() >= credential.expires:
            self.refused += 1
            raise IceFault(
                403, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            )
