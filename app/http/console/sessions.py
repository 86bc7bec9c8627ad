"""The console's sign-in: a session kept in the database, whose cookie carries the key's
role and a random token, signed, and never the key.

Signing in with an API key begins a session of that key's role (``store.sessions``): the
cookie ``icehook_console`` holds the role and a random token, signed and timestamped
(itsdangerous, with a key derived from every configured API key); the database holds the
token's sha256, the role, a short fingerprint of the key and when it expires
(``SESSION_SECONDS``). A request's session must pass all of it: the signature and its age,
a row for the token with the same role, and a configured key of that fingerprint and
role. The cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` when the request came
over HTTPS. Signing out deletes the row, so a copied cookie is worth nothing afterwards;
removing a key (and restarting) ends its sessions; changing any key ends every session.
The CSRF token of a session is derived from its token, and the sign-in form carries a
signed token of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.access import ApiKey, Keyring, Role
from app.store import sessions as stored

COOKIE = "icehook_console"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 600
# A fingerprint is enough to tell keys apart and says nothing usable about the key.
FINGERPRINT_CHARACTERS = 16


@dataclass(frozen=True)
class Session:
    role: Role
    token_hash: bytes
    csrf: str  # every state-changing form carries it; compared in constant time


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:FINGERPRINT_CHARACTERS]


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"icehook console csrf", hashlib.sha256).hexdigest()


class Sessions:
    """Signs people in and out and finds their sessions. Uses: the database and the
    configured API keys."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], keys: Sequence[ApiKey]
    ) -> None:
        self.sessionmaker = sessionmaker
        self.keys = Keyring(keys)
        self._roles = {fingerprint(key.secret): key.role for key in keys}
        material = "\n".join(sorted(key.secret for key in keys)).encode()
        signing_key = hmac.new(b"icehook console sign-in", material, hashlib.sha256).digest()
        self._login_tokens = URLSafeTimedSerializer(signing_key, salt="icehook.console.login")
        self._cookies = URLSafeTimedSerializer(signing_key, salt="icehook.console.session")

    async def sign_in(self, key: ApiKey) -> tuple[Session, str]:
        """A new session of ``key``'s role, and its cookie's value."""
        token = secrets.token_urlsafe(32)
        async with self.sessionmaker.begin() as db:
            await stored.begin(
                db,
                _hash(token),
                key.role,
                fingerprint(key.secret),
                timedelta(seconds=SESSION_SECONDS),
            )
        cookie = self._cookies.dumps([key.role.value, token])
        return Session(key.role, _hash(token), _csrf(token)), cookie

    async def find(self, cookie: str | None) -> Session | None:
        """The session a cookie names, if its signature is good, it has not ended or
        expired, and its key is still configured with the same role."""
        if not cookie or len(cookie) > 300:
            return None
        try:
            role, token = self._cookies.loads(cookie, max_age=SESSION_SECONDS)
        except (BadSignature, ValueError, TypeError):
            return None  # not ours, altered, too old, or not a [role, token] pair
        if not isinstance(token, str):
            return None
        async with self.sessionmaker() as db:
            found = await stored.find(db, _hash(token))
        if found is None or found.role != role:
            return None
        if self._roles.get(found.key_fingerprint) is not found.role:
            return None
        return Session(found.role, _hash(token), _csrf(token))

    async def sign_out(self, session: Session) -> None:
        async with self.sessionmaker.begin() as db:
            await stored.end(db, session.token_hash)

    def login_token(self) -> tuple[str, str]:
        """A token for the sign-in form and the cookie that must come back with it, so that
        another site cannot sign a browser in with a key of its choosing."""
        token = secrets.token_urlsafe(24)
        return token, self._login_tokens.dumps(token)

    def login_token_matches(self, cookie: str | None, given: str | None) -> bool:
        if not cookie or not given:
            return False
        try:
            token = self._login_tokens.loads(cookie, max_age=LOGIN_SECONDS)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token.encode(), given.encode())


def csrf_matches(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(session.csrf.encode(), given.encode())
