"""Where icehook may send a webhook: every subscriber host is resolved when a request is
made, and loopback, private, link-local, site-local, multicast, reserved and other
non-public addresses are refused unless ``ICEHOOK_ALLOWED_WEBHOOK_NETS`` admits them (an
IPv6 address that carries an IPv4 one, as 6to4, Teredo and NAT64 do, is judged by that
one too). The request then goes to the address that was checked (``Target``), with the
original ``Host`` header and TLS server name, so a second DNS answer cannot send it
elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.core.errors import ValidationError
from app.settings import IpNetwork


async def check_reachable(url: str, allowed: Sequence[IpNetwork]) -> None:
    """Refuse (``ValidationError`` on ``url``) a subscriber URL whose host icehook may not
    reach; it is checked again at every delivery."""
    try:
        await resolve(url, allowed)
    except Refused as exc:
        raise ValidationError("url", str(exc)) from None


class Refused(Exception):
    """A subscriber address that icehook may not reach."""


@dataclass(frozen=True)
class Target:
    """Where a webhook request goes: the URL with the checked address in place of the host,
    and what keeps the request about the host (``Host`` header, TLS server name)."""

    url: str
    host_header: str
    server_name: str | None  # for TLS: SNI and certificate checks against the host name


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix


IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that ``address`` leads to: IPv4-mapped, 6to4 (2002::/16), Teredo's
    client (2001::/32), NAT64 (64:ff9b::/96) or IPv4-compatible (::/96); None if none."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IpAddress, allowed: Sequence[IpNetwork]) -> str | None:
    """Why ``address`` may not be reached (None: it may). An IPv6 address that carries an
    IPv4 one (``embedded_ipv4``) is judged by that one too."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # it is that IPv4 address, nothing more
        elif inner is not None and (reason := refusal(inner, allowed)) is not None:
            return f"{address} leads to {inner}: {reason}"
    if any(address in net for net in allowed if net.version == address.version):
        return None
    kinds = ("loopback", "link_local", "site_local", "multicast", "unspecified", "reserved")
    for kind in (*kinds, "private"):
        if getattr(address, f"is_{kind}", False):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


async def resolve(url: str, allowed: Sequence[IpNetwork]) -> Target:
    """The address to send ``url``'s requests to, or ``Refused`` naming why none may be."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]  # an address already: nothing to resolve
    except ValueError:
        addresses = await _addresses_of(host, port)
    reasons = []
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is None:
            literal = f"[{address}]" if address.version == 6 else str(address)
            netloc = f"{literal}:{port}"
            return Target(
                url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
                host_header=parts.netloc.rpartition("@")[2],
                server_name=host if parts.scheme == "https" else None,
            )
        reasons.append(reason)
    raise Refused(
        f"{host}: {'; '.join(dict.fromkeys(reasons))} (ICEHOOK_ALLOWED_WEBHOOK_NETS can admit it)"
    )


# Host lookups run in threads of their own, so that a resolver that never answers holds
# these and not the event loop's default executor (which everything else shares); a lookup
# is given up after RESOLVE_SECONDS (the thread ends when the system resolver gives up).
_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="resolve")


RESOLVE_SECONDS = 5.0


async def _addresses_of(host: str, port: int) -> list[IpAddress]:
    loop = asyncio.get_running_loop()
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.run_in_executor(_resolver, lookup)
    except TimeoutError:
        raise Refused(f"cannot resolve {host!r}: no answer in {RESOLVE_SECONDS:g} s") from None
    except OSError as exc:
        raise Refused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    except UnicodeError:  # the IDNA codec refuses the name (an empty label, one over 63)
        raise Refused(f"{host!r} is not a valid host name") from None
    return [ipaddress.ip_address(str(sockaddr[0]).split("%")[0]) for *_, sockaddr in infos]
