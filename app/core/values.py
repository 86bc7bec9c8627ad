"""How each setting's text is read: every function takes the text of an environment
variable (or a command-line flag) and returns its value, or raises ``ValueError`` saying
what is wrong (``app.settings`` names the variable)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from app.core.access import ApiKey, parse_api_key
from app.core.parsing import natural

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
API_KEY_MIN_LENGTH = 16
GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def database_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError("must be a PostgreSQL URL (postgresql://user@host:port/database)")
    if not parts.path.strip("/"):
        raise ValueError("names no database (postgresql://user@host:port/database)")
    return raw


def http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {raw!r}")
    return raw.rstrip("/")


def region(raw: str) -> str:
    if not all(part.isalnum() for part in raw.split("-")):
        raise ValueError(f"is not a region id like cn-shanghai: {raw!r}")
    return raw


def keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise ValueError("lists no key")
    return keys


def api_keys(raw: str) -> tuple[ApiKey, ...]:
    found = tuple(parse_api_key(entry) for entry in keys(raw))
    for key in found:
        if len(key.secret) < API_KEY_MIN_LENGTH:
            # Not the key itself: this line goes to the terminal and the logs.
            raise ValueError(
                f"a key of {len(key.secret)} characters is too easy to guess; use at least "
                f"{API_KEY_MIN_LENGTH}, e.g. {GENERATE_KEY}"
            )
    return found


def parse_positive(raw: str) -> float:
    """A number of seconds above 0 (also for command-line flags)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {raw!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"must be a finite number greater than 0, got {raw!r}")
    return value


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FOREVER = "forever"


def duration(raw: str) -> float:
    """A whole number with a unit (``30s``, ``15m``, ``12h``, ``90d``, ``2w``) in seconds,
    or ``forever`` (``math.inf``)."""
    text = raw.strip().lower()
    if text == FOREVER:
        return math.inf
    number, unit = text[:-1], text[-1:]
    value = natural(number) if unit in DURATION_UNITS else None
    if value is None or value < 1:
        raise ValueError(
            f"must be a duration like 30s, 15m, 12h, 90d or 2w (or {FOREVER}), got {raw!r}"
        )
    return float(value * DURATION_UNITS[unit])


def format_duration(seconds: float) -> str:
    """``seconds`` as ``duration`` reads it: the largest unit that divides it."""
    if math.isinf(seconds):
        return FOREVER
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda item: -item[1]):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def count(raw: str) -> int:
    value = natural(raw)
    if value is None or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {raw!r}")
    return value


def header_bytes(raw: str) -> int:
    value = count(raw)
    if value < 1024:
        raise ValueError(f"must be at least 1024 (bytes), got {raw!r}")
    return value


def choice(*choices: str) -> Callable[[str], Any]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    return parse


def schedule(raw: str) -> tuple[float, ...]:
    return tuple(parse_positive(part.strip()) for part in raw.split(","))


def nets(raw: str) -> tuple[IpNetwork, ...]:
    nets = []
    for part in raw.split(","):
        try:
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a CIDR network") from None
    return tuple(nets)
