"""The operator commands, against the configured database: ``icehook jobs``, ``icehook
deliveries`` and ``icehook subscriptions``.

They show what the HTTP API shows (the same queries, ``store.audit``; the same checks and
resources, ``http.contracts``), as readable tables, or with ``--json`` as the API's JSON for
scripts. A bad
argument exits with status 2 and one line naming it (``refusal``); something that does not
exist or cannot be done now (``NotFound``, ``Conflict``), with 1.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ConfigError, NotFound, ValidationError
from app.core.events import JOB_FIELDS, job_resource
from app.core.retention import PURGED_MEANING, Purgeable
from app.core.statuses import DeliveryStatus, JobStatus
from app.core.values import format_duration
from app.http.contracts.common import encode_cursor, encode_id_cursor, page_resource
from app.http.contracts.deliveries import delivery_resource, parse_delivery_query
from app.http.contracts.jobs import parse_job_query, timeline_resource
from app.http.contracts.subscriptions import (
    parse_replay,
    parse_subscription,
    shown_once,
    subscription_resource,
)
from app.http.routes.deliveries import delivery_detail
from app.settings import Settings
from app.store import audit, deliveries, subscriptions
from app.webhooks.addresses import check_reachable
from app.webhooks.signing import new_secret

EXIT_REFUSED = 1  # what was named does not exist, or cannot be done now
BLANK: tuple[object, ...] = (None, {}, "")  # values "jobs show" leaves out

Command = Callable[[argparse.Namespace, AsyncSession, Settings], Awaitable[None]]


def add_commands(commands: Any, run: Callable[[argparse.Namespace, Command], None]) -> None:
    """Add ``jobs``, ``deliveries`` and ``subscriptions`` to the ``icehook`` parser
    (``commands``: its subparsers); ``run`` runs a command with a database session."""

    def command(group: Any, name: str, help_: str, action: Command) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, help=help_)
        parser.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
        parser.set_defaults(run=lambda args: run(args, action))
        return parser

    jobs = commands.add_parser("jobs", help="list jobs, or show one with its timeline")
    group = jobs.add_subparsers(required=True, metavar="ACTION")
    listing = command(group, "list", "jobs, newest first", list_jobs)
    listing.add_argument("--status", help=f"only in this status: {_one_of(JobStatus)}")
    listing.add_argument("--ice-job-id", help="only the job with ICE's JobId")
    listing.add_argument("--project-id", help="only jobs of this ICE ProjectId")
    listing.add_argument("--batch-id", help="only the sub-jobs of this batch")
    listing.add_argument("--created-after", metavar="ISO-8601", help="only jobs created after")
    listing.add_argument("--created-before", metavar="ISO-8601", help="only jobs created before")
    _paging(listing)
    command(
        group, "show", "one job with its events, callbacks and deliveries", show_job
    ).add_argument("id", help="icehook's id or ICE's JobId")

    deliveries = commands.add_parser("deliveries", help="list webhook deliveries, or retry one")
    group = deliveries.add_subparsers(required=True, metavar="ACTION")
    listing = command(group, "list", "deliveries, newest first", list_deliveries)
    listing.add_argument("--status", help=f"only in this status: {_one_of(DeliveryStatus)}")
    listing.add_argument("--subscription-id", help="only to this subscription")
    listing.add_argument("--job-id", help="only of this job (icehook's id)")
    listing.add_argument("--event-type", help="only of this event type, e.g. job.succeeded")
    _paging(listing)
    command(
        group, "retry", "send one again now, with a fresh schedule", retry_delivery
    ).add_argument("id", type=int)

    subscriptions = commands.add_parser("subscriptions", help="webhook subscriptions")
    group = subscriptions.add_subparsers(required=True, metavar="ACTION")
    command(group, "list", "the subscriptions in use", list_subscriptions)
    create = command(group, "create", "a new subscription (a v1 secret is shown once)", subscribe)
    create.add_argument("--url", required=True, help="where the webhooks are posted")
    create.add_argument(
        "--event-types", default="*", help="comma-separated, e.g. job.succeeded,job.* (all: *)"
    )
    create.add_argument("--description", default="", help="for the people who read the list")
    create.add_argument(
        "--signature-scheme",
        choices=("v1", "v1a"),
        default="v1",
        help="v1: HMAC with a whsec_ secret (shown once); v1a: ed25519 (its public key shown)",
    )
    command(
        group, "delete", "delete one (its undelivered events become dead)", unsubscribe
    ).add_argument("id")
    recover = command(
        group, "recover", "send again what it has not been delivered of a period", recover_events
    )
    recover.add_argument("id")
    recover.add_argument("--since", required=True, metavar="ISO-8601", help="events from then")
    recover.add_argument("--until", metavar="ISO-8601", help="events before then (default: now)")


def _one_of(values: Iterable[enum.Enum]) -> str:
    return "one of " + ", ".join(str(value.value) for value in values)


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", help="items on the page (default 50)")
    parser.add_argument("--cursor", help="the next page, as the last one said")


def _params(args: argparse.Namespace, names: Iterable[str]) -> dict[str, str]:
    """The given options as the API's query parameters (``--ice-job-id`` -> ``ice_job_id``)."""
    given = {name: getattr(args, name) for name in names}
    return {name: value for name, value in given.items() if value is not None}


# -- jobs -----------------------------------------------------------------------------------


async def list_jobs(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> None:
    names = ("status", "ice_job_id", "project_id", "batch_id", "created_after", "created_before")
    query = parse_job_query(_params(args, (*names, "limit", "cursor")))
    page = page_resource(
        await audit.jobs(session, query),
        job_resource,
        lambda last: encode_cursor(last["created_at"], last["id"]),
    )
    columns = ["id", "status", "ice_job_id", "project_id", "created_at", "updated_at"]
    if any(job["fate_unknown_since"] for job in page["items"]):
        columns.append("fate_unknown_since")  # submissions ICE cannot show: see `jobs show`
    _show_page(args, page, columns)


async def show_job(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> None:
    job = await audit.find_job(session, args.id)
    if job is None:
        raise NotFound(f"no job {args.id!r}")
    timeline = timeline_resource(job, await audit.timeline(session, job["id"]))
    if args.json:
        _print_json(timeline)
        return
    fields = [name for name in JOB_FIELDS if timeline.get(name) not in BLANK]
    width = max(map(len, fields))
    for name in fields:
        print(f"{name:<{width}}  {_cell(timeline[name])}")
    sections = {
        "events": ["created_at", "from_status", "to_status", "source"],
        "callbacks": ["received_at", "ice_status", "outcome", "detail"],
        "deliveries": ["id", "event_type", "status", "attempts", "last_status_code"],
    }
    purged = {name: when for name, when in timeline["purged"].items() if when is not None}
    if purged:
        print(
            "\npurged by retention: "
            + ", ".join(
                f"{name.removesuffix('_before')} before {_cell(when)}"
                for name, when in purged.items()
            )
        )
    for section, columns in sections.items():
        print(f"\n{section} ({len(timeline[section])})")
        if timeline[section]:
            print(table(timeline[section], columns))


# -- deliveries -----------------------------------------------------------------------------


async def list_deliveries(
    args: argparse.Namespace, session: AsyncSession, settings: Settings
) -> None:
    names = ("status", "subscription_id", "job_id", "event_type", "limit", "cursor")
    page = page_resource(
        await audit.deliveries(session, parse_delivery_query(_params(args, names))),
        delivery_resource,
        lambda last: encode_id_cursor(last["id"]),
    )
    _show_page(
        args,
        page,
        ["id", "status", "event_type", "job_id", "attempts", "last_status_code", "created_at"],
    )


async def retry_delivery(
    args: argparse.Namespace, session: AsyncSession, settings: Settings
) -> None:
    if not await deliveries.retry(session, args.id):
        raise NotFound(f"no delivery {args.id}")
    delivery = await delivery_detail(session, args.id)
    if args.json:
        _print_json(delivery)
    else:
        print(f"delivery {args.id} is due again now ({delivery['event_type']})")


# -- subscriptions --------------------------------------------------------------------------


async def list_subscriptions(
    args: argparse.Namespace, session: AsyncSession, settings: Settings
) -> None:
    rows = [subscription_resource(r) for r in await subscriptions.in_use(session)]
    if args.json:
        _print_json({"items": rows})
    else:
        print(table(rows, ["id", "url", "event_types", "enabled", "disabled_reason"]))


async def subscribe(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> None:
    values = parse_subscription(
        {
            "url": args.url,
            "event_types": [t.strip() for t in args.event_types.split(",") if t.strip()],
            "description": args.description,
            "signature_scheme": args.signature_scheme,
        }
    )
    await check_reachable(values["url"], settings.allowed_webhook_nets)
    secret = new_secret(values["signature_scheme"])
    row = await subscriptions.create(session, values, secret)
    created = shown_once(row, secret)
    if args.json:
        _print_json(created)
    else:
        print(f"subscription {created['id']} to {created['url']}")
        if "secret" in created:
            print(f"secret (shown this once): {secret}")
        else:
            print(f"public key (v1a, ed25519): {created['public_key']}")


async def unsubscribe(args: argparse.Namespace, session: AsyncSession, settings: Settings) -> None:
    subscription_id = _subscription_id(args.id)
    if not await subscriptions.delete(session, subscription_id):
        raise NotFound(f"no subscription {args.id!r}")
    if not args.json:
        print(f"subscription {subscription_id} deleted")


async def recover_events(
    args: argparse.Namespace, session: AsyncSession, settings: Settings
) -> None:
    """What ``POST /v1/subscriptions/{id}/recover`` does: only what was not delivered."""
    subscription_id = _subscription_id(args.id)
    since, until = parse_replay(_params(args, ("since", "until")))
    if await subscriptions.find(session, subscription_id) is None:
        raise NotFound(f"no subscription {args.id!r}")
    count = await deliveries.replay(session, subscription_id, since, until, recovering=True)
    if args.json:
        _print_json({"recovered": count})
    else:
        print(f"{count} undelivered events of subscription {subscription_id} are due again now")


def _subscription_id(given: str) -> uuid.UUID:
    try:
        return uuid.UUID(given)
    except ValueError:
        raise NotFound(f"no subscription {given!r}") from None


# -- purge ----------------------------------------------------------------------------------


def show_purged(
    args: argparse.Namespace, removed: Mapping[Purgeable, int], settings: Settings
) -> None:
    """What ``icehook purge`` removed (or with ``--dry-run`` would remove), by kind."""
    if args.json:
        _print_json({"dry_run": args.dry_run, **removed})
        return
    windows = (
        f"ICEHOOK_RETENTION={format_duration(settings.retention_seconds)}, "
        f"ICEHOOK_HISTORY_RETENTION={format_duration(settings.history_retention_seconds)}"
    )
    print(f"icehook: {'would remove' if args.dry_run else 'removed'} ({windows}):")
    for kind, meaning in PURGED_MEANING.items():
        counted = str(removed[kind]) if kind in removed else "-"
        print(f"  {counted:>10}  {meaning}{'' if kind in removed else ' (kept forever)'}")


# -- output ---------------------------------------------------------------------------------


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as aligned text columns, a header first."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(text) for text in (column, *(r[n] for r in cells)))
        for n, column in enumerate(columns)
    ]
    lines = [columns, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value).replace("\n", " ")


def _show_page(args: argparse.Namespace, page: Mapping[str, Any], columns: Sequence[str]) -> None:
    if args.json:
        _print_json(page)
        return
    print(table(page["items"], columns))
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def refusal(exc: ValidationError) -> ConfigError:
    """A bad argument, as the command line names it (``--ice-job-id``, not ``ice_job_id``)."""
    return ConfigError(f"--{exc.field.replace('_', '-')}", str(exc).split(": ", 1)[-1])
