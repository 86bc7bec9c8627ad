"""Token buckets: how many of something a sender (and everyone together) may still have.

Used for refused callbacks (an unknown token, a bad signature): each is kept for the audit
only while its sender's bucket and the shared one hold a token, so a flood of them costs
the database a bounded number of rows, however many addresses it comes from.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    """Up to ``burst`` tokens, refilled at ``rate`` per second."""

    burst: float
    rate: float
    tokens: float
    at: float  # when ``tokens`` was last brought up to date

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now


class SenderBuckets:
    """One ``Bucket`` per sender (at most ``max_senders``, the least recently seen forgotten)
    and one shared by all; ``take`` needs a token from both."""

    def __init__(
        self,
        *,
        burst: float,
        rate: float,
        shared_burst: float,
        shared_rate: float,
        max_senders: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._rate, self._max = burst, rate, max_senders
        self._clock = clock
        self._shared = Bucket(shared_burst, shared_rate, shared_burst, clock())
        self._senders: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, sender: str | None) -> bool:
        """Take a token for ``sender`` (and the shared one); False when either is empty."""
        now = self._clock()
        bucket = self._bucket(sender_key(sender), now)
        bucket.refill(now)
        self._shared.refill(now)
        if bucket.tokens < 1 or self._shared.tokens < 1:
            return False
        bucket.tokens -= 1
        self._shared.tokens -= 1
        return True

    def give_back(self, sender: str | None) -> None:
        """Undo a ``take`` that turned out not to be needed."""
        bucket = self._senders.get(sender_key(sender))
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)
        self._shared.tokens = min(self._shared.burst, self._shared.tokens + 1)

    def _bucket(self, key: str, now: float) -> Bucket:
        bucket = self._senders.pop(key, None) or Bucket(self._burst, self._rate, self._burst, now)
        self._senders[key] = bucket  # the most recently seen last
        while len(self._senders) > self._max:
            self._senders.popitem(last=False)
        return bucket


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the rest of ``take``
def sender_key(peer: str | None) -> str:
    """Who a peer address counts as: itself for IPv4, its /64 for IPv6 (one host usually
    has a whole /64 to send from)."""
    if peer is None:
        return ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
