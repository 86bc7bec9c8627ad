"""Who may do what: the roles an API key carries, and the role each request needs.

An ``ICEHOOK_API_KEYS`` entry is ``role:key`` or a bare ``key`` (an ``admin`` key, as
before roles existed). ``admin`` may do everything; ``read`` may read every resource of
``/v1`` and the console's pages; ``metrics`` may scrape ``/metrics`` and nothing else, so
the key a Prometheus server holds cannot read jobs or change subscriptions.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    ADMIN = "admin"
    READ = "read"
    METRICS = "metrics"


# HTTP methods that never change anything: what a ``read`` key may send.
READING_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class ApiKey:
    role: Role
    secret: str = field(repr=False)


def parse_api_key(entry: str) -> ApiKey:
    """One ``ICEHOOK_API_KEYS`` entry; ``ValueError`` for an unknown role. A key itself
    never holds ``:``, so that a misspelt role is an error rather than part of a key."""
    role, colon, secret = entry.partition(":")
    if not colon:
        return ApiKey(Role.ADMIN, entry)
    try:
        return ApiKey(Role(role), secret)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValueError(
            f"an entry names the role {role!r}; roles are {roles} (write role:key, or a "
            "bare key for admin; a key holds no ':')"
        ) from None


def role_needed(method: str, declared: Role | None) -> Role:
    """The role a request needs: what its operation declares, else ``read`` for a method
    that only reads and ``admin`` for any other."""
    if declared is not None:
        return declared
    return Role.READ if method in READING_METHODS else Role.ADMIN


def grants(held: Role, needed: Role) -> bool:
    """Whether a key of role ``held`` may do what needs ``needed``."""
    return held is Role.ADMIN or held is needed


class Keyring:
    """The configured keys, each kept as its sha256, for telling which one a given text is.
    Used by the API's bearer check and the console's sign-in alike."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._digests = [(hashlib.sha256(key.secret.encode()).digest(), key) for key in keys]

    def find(self, given: str) -> ApiKey | None:
        """The configured key ``given`` is, if any. Compared by digest with every key in
        constant time, so that timing says nothing about which one matched, or how much."""
        digest = hashlib.sha256(given.strip().encode()).digest()
        found = None
        for known, key in self._digests:
            if hmac.compare_digest(digest, known):
                found = key
        return found
