"""Downstream notifications: subscriptions, the fan-out of job events, and their delivery.

Every transition that ``jobs.record_status`` writes has one ``outbox`` message, whose
``event_id`` is the Standard Webhooks ``webhook-id`` (the same on every retry). In the same
transaction ``fan_out`` adds one ``deliveries`` row for each subscription that wants that
event type at that moment. A ``Deliverer`` (in every worker) then:

1. claims due deliveries with a lease longer than the request timeout (``FOR UPDATE SKIP
   LOCKED``), never one while an earlier event of the same job for the same subscription
   is neither delivered nor dead, so that a job's events arrive in order;
2. resolves the subscriber's host and refuses loopback, private, link-local, multicast and
   reserved addresses unless ``ICEHOOK_ALLOWED_WEBHOOK_NETS`` admits them; the request
   goes to the address that was checked (a second DNS answer cannot redirect it);
3. POSTs the event outside any transaction, signed with every secret that still signs
   (two during a rotation), and does not follow redirects;
4. records the attempt (status, latency, error, the first KiB of the answer) and its
   outcome: 2xx is delivered; ``410 Gone`` disables the subscription; anything else is
   tried again on ``ICEHOOK_DELIVERY_RETRY_SCHEDULE`` with +-20 % jitter, never sooner
   than the answer's ``Retry-After``, and is ``dead`` after the last step. A subscription
   that has failed without one success for ``ICEHOOK_WEBHOOK_DISABLE_AFTER_SECONDS`` is
   disabled, with the reason in the API.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import email.utils
import functools
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import ARRAY, UUID, array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import db, metrics, numbers, outbound
from app.errors import Conflict, ValidationError, log_failure
from app.models import (
    DeliveryStatus,
    JobKind,
    deliveries,
    delivery_attempts,
    outbox,
    subscriptions,
)
from app.queue import DELIVERIES, notify
from app.settings import IpNetwork, Settings
from app.signing import webhook_headers

if TYPE_CHECKING:
    from app.main import Runtime

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "job.submitted",
    "job.queuing",
    "job.processing",
    "job.succeeded",
    "job.failed",
    "job.rejected",
    "batch.submitted",
    "batch.processing",
    "batch.finished",
    "batch.failed",
    "batch.rejected",
)
# What a subscription's ``event_types`` may hold: a type, every type of a kind, or all.
PATTERNS = frozenset({*EVENT_TYPES, *(f"{kind.value}.*" for kind in JobKind), "*"})
EXCERPT_BYTES = 1024  # of a subscriber's answer, kept with the attempt
JITTER = 0.2
LEASE_MARGIN_SECONDS = 5.0  # a delivery's lease outlasts its request by this much
MAX_RECORDED_TOGETHER = 256  # finished deliveries recorded in one transaction
# While deliveries keep coming, claims start at most this often (each takes what became due
# meanwhile); a webhook waits for the next claim.
CLAIM_GAP_SECONDS = 0.005
ERROR_PAUSE_SECONDS = 2.0
USER_AGENT = "icehook-webhooks"


def lease_seconds(settings: Settings) -> float:
    """A delivery's lease: longer than its request, which ends at its deadline (``send``),
    so that no other worker sends it while it is open. (A recording slower than the margin
    lets another worker send it again afterwards: at least once, never two at a time.)"""
    return settings.delivery_timeout_seconds + LEASE_MARGIN_SECONDS


def wants(
    patterns: sa.ColumnElement[Any], event_type: sa.ColumnElement[str]
) -> sa.ColumnElement[bool]:
    """Whether ``patterns`` (a text array) select ``event_type``: it, ``kind.*`` or ``*``."""
    kind = sa.func.split_part(event_type, ".", 1)
    chosen: sa.ColumnElement[bool] = patterns.overlap(
        sa.cast(array([event_type, kind.concat(".*"), sa.literal("*")]), ARRAY(sa.Text))
    )
    return chosen


# -- events and subscriptions -----------------------------------------------------------------


def fan_out(messages: sa.CTE) -> sa.Select[Any]:
    """The statement that ends writing ``messages`` (the CTE inserting them, which returns
    their ``id``, ``job_id`` and ``event_type``): one delivery of each to each enabled
    subscription that wants it, and a wake-up for the delivery workers when the transaction
    commits if there is any."""
    fanned = (
        insert(deliveries)
        .from_select(
            ["message_id", "subscription_id", "job_id", "event_type", "status"],
            sa.select(
                messages.c.id,
                subscriptions.c.id,
                messages.c.job_id,
                messages.c.event_type,
                sa.literal(DeliveryStatus.PENDING.value, sa.Text),
            )
            .select_from(messages.join(subscriptions, sa.true()))
            .where(
                subscriptions.c.enabled,
                subscriptions.c.deleted_at.is_(None),
                wants(subscriptions.c.event_types, messages.c.event_type),
            ),
        )
        .returning(deliveries.c.id)
        .cte("fanned")
    )
    return sa.select(notify(DELIVERIES)).where(sa.exists(sa.select(fanned.c.id)))


async def check_reachable(url: str, allowed: Sequence[IpNetwork]) -> None:
    """Refuse (``ValidationError`` on ``url``) a subscriber URL whose host icehook may not
    reach; it is checked again at every delivery."""
    try:
        await resolve(url, allowed)
    except Refused as exc:
        raise ValidationError("url", str(exc)) from None


async def subscribe(session: AsyncSession, values: Mapping[str, Any]) -> tuple[RowMapping, str]:
    """A new subscription (``values``: as ``schemas.parse_subscription`` gives them) and its
    secret, which is shown this once."""
    secret = new_secret()
    row = (
        (
            await session.execute(
                sa.insert(subscriptions)
                .values(id=uuid.uuid4(), secret=secret, **values)
                .returning(*subscriptions.c)
            )
        )
        .mappings()
        .one()
    )
    return row, secret


async def subscriptions_in_use(session: AsyncSession) -> list[RowMapping]:
    """Every subscription that is not deleted, oldest first."""
    rows = await session.execute(
        sa.select(subscriptions)
        .where(subscriptions.c.deleted_at.is_(None))
        .order_by(subscriptions.c.created_at, subscriptions.c.id)
    )
    return list(rows.mappings())


async def unsubscribe(session: AsyncSession, subscription_id: uuid.UUID) -> bool:
    """Delete a subscription (its history is kept; its undelivered events become dead);
    False if there is no such subscription."""
    deleted = await session.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == subscription_id, subscriptions.c.deleted_at.is_(None))
        .values(enabled=False, deleted_at=sa.func.now(), updated_at=sa.func.now())
        .returning(subscriptions.c.id)
    )
    if deleted.one_or_none() is None:
        return False
    await session.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.DEAD, last_error="the subscription was deleted")
    )
    return True


def new_secret() -> str:
    """A ``whsec_`` secret: 32 random bytes, base64 (what Standard Webhooks libraries read)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(subscription: Mapping[Any, Any], now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    signing = [subscription["secret"]]
    until = subscription["previous_secret_until"]
    if subscription["previous_secret"] and until is not None and until > now:
        signing.append(subscription["previous_secret"])
    return signing


async def replay(
    session: AsyncSession, subscription: Mapping[Any, Any], since: datetime, until: datetime | None
) -> int:
    """Send ``subscription`` again every recorded event it wants from ``since`` (to
    ``until``), also those from before it existed; returns how many."""
    conditions = [
        outbox.c.created_at >= since,
        wants(sa.literal(list(subscription["event_types"]), ARRAY(sa.Text)), outbox.c.event_type),
    ]
    if until is not None:
        conditions.append(outbox.c.created_at < until)
    add = insert(deliveries).from_select(
        ["message_id", "subscription_id", "job_id", "event_type", "status"],
        sa.select(
            outbox.c.id,
            sa.literal(subscription["id"], deliveries.c.subscription_id.type),
            outbox.c.job_id,
            outbox.c.event_type,
            sa.literal(DeliveryStatus.PENDING.value, sa.Text),
        )
        .where(*conditions)
        .order_by(outbox.c.id),
    )
    # A delivery that exists already is made due again (a leased one keeps its lease).
    statement = add.on_conflict_do_update(
        index_elements=[deliveries.c.message_id, deliveries.c.subscription_id],
        set_=_due_again(),
    ).returning(deliveries.c.id)
    count = len((await session.execute(statement)).all())
    if count:
        await session.execute(sa.select(notify(DELIVERIES)))
    return count


def _due_again() -> dict[str, Any]:
    return {
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": sa.func.now(),
        "delivered_at": None,
    }


async def retry(session: AsyncSession, delivery_id: int) -> RowMapping | None:
    """Make a delivery due now, with a fresh retry schedule; None if there is no such.
    ``Conflict`` if its subscription is disabled or deleted (it would not be sent)."""
    row = (
        (
            await session.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(_due_again())
                .returning(*deliveries.c)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    subscription = (
        await session.execute(
            sa.select(subscriptions.c.enabled, subscriptions.c.deleted_at).where(
                subscriptions.c.id == row["subscription_id"]
            )
        )
    ).one()
    if subscription.deleted_at is not None or not subscription.enabled:
        raise Conflict("its subscription is disabled or deleted; enable it first")
    await session.execute(sa.select(notify(DELIVERIES)))
    return row


# -- outbound safety ------------------------------------------------------------------------


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


# -- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one POST to a subscriber gave."""

    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None  # seconds, from the answer's Retry-After

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_delay(
    schedule: Sequence[float], failures: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds until the next attempt after ``failures`` failed ones; None: no more."""
    if failures > len(schedule):
        return None
    delay = schedule[failures - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    seconds = numbers.natural(value)
    if seconds is not None:
        return float(seconds)
    with contextlib.suppress(TypeError, ValueError):
        moment = email.utils.parsedate_to_datetime(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, (moment - now).total_seconds())
    return None


CLAIMED_COLUMNS = (
    deliveries.c.id,
    deliveries.c.attempts,
    deliveries.c.subscription_id,
    outbox.c.event_id,
    outbox.c.payload,
    subscriptions.c.url,
    subscriptions.c.secret,
    subscriptions.c.previous_secret,
    subscriptions.c.previous_secret_until,
)


def _claim_statement() -> sa.Select[Any]:
    """Lease up to ``:limit`` due deliveries for ``:lease_seconds``, each the earliest undone
    event of its job for its subscription; select them with their message and subscription."""
    earlier = deliveries.alias("earlier")
    due = (
        sa.select(deliveries.c.id)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING,
            deliveries.c.next_attempt_at <= sa.func.now(),
            sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < sa.func.now()),
            subscriptions.c.enabled,
            subscriptions.c.deleted_at.is_(None),
            ~sa.exists().where(
                earlier.c.subscription_id == deliveries.c.subscription_id,
                earlier.c.job_id == deliveries.c.job_id,
                earlier.c.message_id < deliveries.c.message_id,
                earlier.c.status == DeliveryStatus.PENDING,
            ),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .with_for_update(of=deliveries, skip_locked=True)
        .cte("due")
    )
    lease = sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("lease_seconds", type_=sa.Float()))
    leased = (
        sa.update(deliveries)
        .where(deliveries.c.id.in_(sa.select(due.c.id)))
        .values(lease_until=sa.func.now() + lease)
        .returning(deliveries.c.id)
        .cte("leased")
    )
    return (
        sa.select(*CLAIMED_COLUMNS)
        .select_from(deliveries)
        .join(leased, leased.c.id == deliveries.c.id)
        .join(outbox, outbox.c.id == deliveries.c.message_id)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
    )


CLAIM = _claim_statement()


async def claim(session: AsyncSession, *, limit: int, lease_seconds: float) -> list[RowMapping]:
    """Lease up to ``limit`` due deliveries, each the earliest undone event of its job for
    its subscription; returns them with their message and subscription."""
    rows = await session.execute(CLAIM, {"limit": limit, "lease_seconds": lease_seconds})
    return list(rows.mappings())


async def send(
    client: httpx.AsyncClient, delivery: Mapping[Any, Any], settings: Settings, now: datetime
) -> Attempt:
    """POST ``delivery`` to its subscriber, once; never raises for the subscriber's faults.

    The whole attempt (looking the host up, connecting, sending, reading the answer's head
    and its first ``EXCERPT_BYTES``) ends within ``ICEHOOK_DELIVERY_TIMEOUT_SECONDS``: httpx's
    own timeouts bound each read, and a subscriber trickling its answer would hold the
    request, and a slot, for ever.
    """
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    seconds = settings.delivery_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await _post(client, delivery, settings, now, elapsed)
    except TimeoutError:
        return Attempt(latency_ms=elapsed(), error=f"no complete answer within {seconds:g} s")
    except Refused as exc:
        return Attempt(error=f"refused: {exc}")
    except outbound.FAILURES as exc:
        return Attempt(latency_ms=elapsed(), error=outbound.describe(exc)[:500])
    except Exception as exc:  # the request could not even be made (a URL httpx refuses)
        return Attempt(latency_ms=elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])


async def _post(
    client: httpx.AsyncClient,
    delivery: Mapping[Any, Any],
    settings: Settings,
    now: datetime,
    elapsed: Callable[[], float],
) -> Attempt:
    target = await resolve(delivery["url"], settings.allowed_webhook_nets)
    body = json.dumps(delivery["payload"], separators=(",", ":"), ensure_ascii=False)
    headers = webhook_headers(
        message_id=delivery["event_id"],
        body=body,
        secrets=signing_secrets(delivery, now),
        now=now,
    ) | {"host": target.host_header, "content-type": "application/json", "user-agent": USER_AGENT}
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    async with client.stream(
        "POST",
        target.url,
        content=body.encode(),
        headers=headers,
        extensions=extensions,
        timeout=settings.delivery_timeout_seconds,
    ) as response:
        excerpt = bytearray()
        async for chunk in response.aiter_bytes():
            excerpt += chunk
            if len(excerpt) >= EXCERPT_BYTES:
                break
    return Attempt(
        status_code=response.status_code,
        latency_ms=elapsed(),
        # As text PostgreSQL can hold: a subscriber may answer anything, NUL bytes included.
        excerpt=bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace").replace("\x00", "\ufffd"),
        retry_after=parse_retry_after(response.headers.get("retry-after"), now),
    )


# A successful attempt of each of many deliveries, logged and settled in one statement.
DELIVERED = db.RowsParameter(
    "delivered",
    {
        "id": sa.BigInteger(),
        "subscription_id": UUID(as_uuid=True),
        "status_code": sa.Integer(),
        "latency_ms": sa.Float(),
        "excerpt": sa.Text(),
    },
)


def _record_delivered_statement() -> sa.Update:
    done = sa.select(DELIVERED.table).cte("done")
    logged = sa.insert(delivery_attempts).from_select(
        ["delivery_id", "status_code", "latency_ms", "response_excerpt"],
        sa.select(done.c.id, done.c.status_code, done.c.latency_ms, done.c.excerpt),
    )
    recovered = (
        sa.update(subscriptions)
        .where(
            subscriptions.c.id.in_(sa.select(done.c.subscription_id)),
            subscriptions.c.failing_since.is_not(None),
        )
        .values(failing_since=None)
    )
    return (
        sa.update(deliveries)
        .where(deliveries.c.id == done.c.id, deliveries.c.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.DELIVERED,
            attempts=deliveries.c.attempts + 1,
            lease_until=None,
            last_status_code=done.c.status_code,
            last_error=None,
            delivered_at=sa.func.now(),
        )
        # PostgreSQL runs a data-modifying WITH even if nothing reads it.
        .add_cte(logged.cte("logged"), recovered.cte("recovered"))
    )


RECORD_DELIVERED = _record_delivered_statement()


async def record_all(
    session: AsyncSession,
    finished: Sequence[tuple[Mapping[Any, Any], Attempt]],
    settings: Settings,
    rng: random.Random,
) -> list[DeliveryStatus]:
    """Log each attempt of ``finished`` (deliveries, each with its attempt) and settle what
    it means for the delivery and its subscription; returns their statuses, in order.

    Every success of the lot is one statement (``RECORD_DELIVERED``); a failure is looked
    at on its own (its schedule, and how long its subscription has been failing).
    """
    delivered = [
        {
            "id": delivery["id"],
            "subscription_id": delivery["subscription_id"],
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "excerpt": attempt.excerpt,
        }
        for delivery, attempt in finished
        if attempt.delivered
    ]
    if delivered:
        await session.execute(RECORD_DELIVERED, DELIVERED.bind(delivered))
    return [
        DeliveryStatus.DELIVERED
        if attempt.delivered
        else await _record_failure(session, delivery, attempt, settings, rng)
        for delivery, attempt in finished
    ]


async def _record_failure(
    session: AsyncSession,
    delivery: Mapping[Any, Any],
    attempt: Attempt,
    settings: Settings,
    rng: random.Random,
) -> DeliveryStatus:
    subscription = subscriptions.c.id == delivery["subscription_id"]
    values: dict[str, Any] = {
        "attempts": deliveries.c.attempts + 1,
        "lease_until": None,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
    }
    if attempt.status_code == 410:
        status = DeliveryStatus.DEAD
        await _disable(session, subscription, "the endpoint answered 410 Gone")
    else:
        delay = next_delay(
            settings.delivery_retry_schedule, delivery["attempts"] + 1, attempt.retry_after, rng
        )
        status = DeliveryStatus.PENDING if delay is not None else DeliveryStatus.DEAD
        if delay is not None:
            values |= {"next_attempt_at": sa.func.now() + timedelta(seconds=delay)}
        await _note_failure(session, subscription, settings.webhook_disable_after_seconds)
    logged = sa.insert(delivery_attempts).values(
        delivery_id=delivery["id"],
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        response_excerpt=attempt.excerpt,
    )
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery["id"], deliveries.c.status == DeliveryStatus.PENDING)
        .values(values | {"status": status})
        .add_cte(logged.cte("logged"))
    )
    return status


async def _disable(session: AsyncSession, which: sa.ColumnElement[bool], reason: str) -> None:
    await session.execute(
        sa.update(subscriptions)
        .where(which, subscriptions.c.enabled)
        .values(enabled=False, disabled_reason=reason, updated_at=sa.func.now())
    )


async def _note_failure(
    session: AsyncSession, which: sa.ColumnElement[bool], disable_after: float
) -> None:
    failing_since = (
        await session.execute(
            sa.update(subscriptions)
            .where(which)
            .values(failing_since=sa.func.coalesce(subscriptions.c.failing_since, sa.func.now()))
            .returning(subscriptions.c.failing_since)
        )
    ).scalar_one_or_none()
    if failing_since is not None and failing_since <= datetime.now(UTC) - timedelta(
        seconds=disable_after
    ):
        await _disable(
            session,
            which,
            f"every delivery has failed since {failing_since.isoformat()}, "
            f"longer than {disable_after:g} s",
        )


class Deliverer:
    """A worker's webhook sender: a loop (``run``) that keeps up to ``delivery_concurrency``
    requests in flight. Each delivery is claimed, sent outside any transaction, and
    recorded in a group commit with the others that finished meanwhile (``record_all``)."""

    def __init__(self, rt: Runtime, rng: random.Random | None = None) -> None:
        self.rt = rt
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        # No proxy: it would reach addresses that the checks never saw.
        self.client = outbound.client(
            max_connections=rt.settings.delivery_concurrency, trust_env=False
        )
        self._records = db.GroupCommit(self._record_all, MAX_RECORDED_TOGETHER)
        self._in_flight: set[asyncio.Task[None]] = set()
        # A claim is one short transaction: its statements and commit each within the timeout.
        self.watch = rt.health.watch("webhook claims", 3 * rt.settings.database_timeout_seconds)

    async def run(self, stopping: Callable[[], bool], poll_seconds: float) -> None:
        """Claim and send until ``stopping()``; sleep while nothing is due or every slot is
        taken (a finished delivery, NOTIFY or the poll interval wakes it)."""
        waker = self.rt.delivery_waker
        settings = self.rt.settings
        assert settings.database_url is not None
        listener = asyncio.create_task(
            waker.listen(settings.database_url, stopping, settings.database_timeout_seconds)
        )
        loop = asyncio.get_running_loop()
        try:
            while not stopping():
                started = loop.time()
                try:
                    with self.watch.busy():
                        await self.run_once()
                except Exception:
                    log_failure(logger, "claiming deliveries failed; trying again shortly")
                    await asyncio.sleep(ERROR_PAUSE_SECONDS)
                    continue
                await waker.wait(poll_seconds)
                # Claims at most every CLAIM_GAP_SECONDS, each taking what became due meanwhile.
                await asyncio.sleep(max(0.0, started + CLAIM_GAP_SECONDS - loop.time()))
        finally:
            await self.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def run_once(self) -> int:
        """Claim what is due (as many as there are free slots) and start sending it."""
        free = self.rt.settings.delivery_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        async with self.rt.sessionmaker.begin() as session:
            lease = lease_seconds(self.rt.settings)
            claimed = await claim(session, limit=free, lease_seconds=lease)
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if len(claimed) == free:
            self.rt.delivery_waker.wake()  # more may be due
        return len(claimed)

    async def _deliver(self, delivery: RowMapping) -> None:
        try:
            attempt = await send(self.client, delivery, self.rt.settings, datetime.now(UTC))
            metrics.DELIVERY_ATTEMPTS.labels("delivered" if attempt.delivered else "failed").inc()
            if attempt.latency_ms is not None:
                metrics.DELIVERY_SECONDS.observe(attempt.latency_ms / 1000)
            await self._records.submit(
                (delivery, attempt), within=2 * self.rt.settings.database_timeout_seconds
            )
        except Exception:  # the lease expires and the delivery is tried again
            log_failure(logger, "delivery %s failed to complete", delivery["id"])
        finally:
            self.rt.delivery_waker.wake()  # a slot is free, and the job's next event may be due

    async def _record_all(
        self, finished: Sequence[tuple[RowMapping, Attempt]]
    ) -> list[DeliveryStatus]:
        async with self.rt.sessionmaker.begin() as session:
            return await record_all(session, finished, self.rt.settings, self.rng)

    async def close(self) -> None:
        """Let the requests in flight finish and be recorded, then close the client."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self.client.aclose()
