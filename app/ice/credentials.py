"""Where icehook's ICE credentials come from (docs/configuration.md, Credentials).

An AccessKey pair in ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
(with ``ALIBABA_CLOUD_SECURITY_TOKEN`` for a fixed STS token) is used as it is. Without
one, temporary credentials come from the source the environment names, in the order of
Alibaba Cloud's default credential chain and through its own library
(``alibabacloud-credentials``), which renews them before they expire:

1. an OIDC role (RRSA on ACK): ``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``
   and ``ALIBABA_CLOUD_OIDC_TOKEN_FILE``;
2. the ECS instance's RAM role: ``ALIBABA_CLOUD_ECS_METADATA`` (the role's name);
3. a credentials URI answering STS credentials: ``ALIBABA_CLOUD_CREDENTIALS_URI``.

Unlike the library's own default chain, nothing is probed that was not named: its chain
asks the ECS metadata address on every machine and keeps a thread refreshing from it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from alibabacloud_credentials.provider import (
    EcsRamRoleCredentialsProvider,
    OIDCRoleArnCredentialsProvider,
    URLCredentialsProvider,
)

from app.core.errors import IceError
from app.settings import Settings


@dataclass(frozen=True)
class Credential:
    """What one ICE request is signed with."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class Credentials(Protocol):
    async def current(self) -> Credential:
        """The credential to sign the next request with; ``IceError`` (code
        ``CredentialsUnavailable``) when there is none now."""
        ...


@dataclass(frozen=True)
class FixedCredentials:
    """An AccessKey pair (and STS token) from the configuration."""

    credential: Credential

    async def current(self) -> Credential:
        return self.credential


class Provider(Protocol):
    """A credentials provider of ``alibabacloud-credentials``."""

    async def get_credentials_async(self) -> Any: ...


class RenewedCredentials:
    """Temporary credentials from one of the library's providers, each lookup within
    ``timeout`` seconds (the provider caches them and renews them before they expire)."""

    def __init__(self, provider: Provider, timeout: float) -> None:
        self._provider = provider
        self._timeout = timeout
        # One lookup at a time: the library holds a threading lock across its own awaits,
        # so a second coroutine arriving during a renewal would block the event loop.
        self._one_at_a_time = asyncio.Lock()

    async def current(self) -> Credential:
        try:
            async with asyncio.timeout(self._timeout), self._one_at_a_time:
                found = await self._provider.get_credentials_async()
        except Exception as exc:  # the library raises its own, and its transports' errors
            raise IceError(0, UNAVAILABLE, f"no ICE credentials: {exc}") from None
        key_id, secret = found.get_access_key_id(), found.get_access_key_secret()
        if not key_id or not secret:
            raise IceError(0, UNAVAILABLE, "the credential source gave no AccessKey")
        return Credential(key_id, secret, found.get_security_token())


class NoCredentials:
    async def current(self) -> Credential:
        raise IceError(
            0,
            UNAVAILABLE,
            "no AccessKey pair, OIDC role, ECS RAM role or credentials URI is configured",
        )


UNAVAILABLE = "CredentialsUnavailable"

# The library gives its logger a handler of its own, which would write every line a second
# time, past icehook's formatting and secret redaction (telemetry.logs): it goes through
# the root logger's only.
logging.getLogger("credentials").handlers.clear()


def credentials_for(settings: Settings) -> Credentials:
    """The configured AccessKey pair, or else the first temporary source configured."""
    if settings.access_key_id and settings.access_key_secret:
        return FixedCredentials(
            Credential(settings.access_key_id, settings.access_key_secret, settings.security_token)
        )
    provider: Provider
    if settings.oidc_role_arn and settings.oidc_provider_arn and settings.oidc_token_file:
        provider = OIDCRoleArnCredentialsProvider(
            role_arn=settings.oidc_role_arn,
            oidc_provider_arn=settings.oidc_provider_arn,
            oidc_token_file_path=settings.oidc_token_file,
        )
    elif settings.ecs_ram_role:
        # Renewed when used, not by the library's background thread.
        provider = EcsRamRoleCredentialsProvider(
            role_name=settings.ecs_ram_role, async_update_enabled=False
        )
    elif settings.credentials_uri:
        provider = URLCredentialsProvider(uri=settings.credentials_uri)
    else:
        return NoCredentials()
    return RenewedCredentials(provider, settings.ice_timeout_seconds)
