"""Which subscriptions receive an event: SQL conditions shared by the statements that queue
deliveries (``store.jobs`` as jobs move, ``store.subscriptions`` for operational events,
``store.deliveries`` for replays and recoveries).

A subscription receives an event when it is not deleted, is enabled or was disabled so
recently that its events are still queued for it (``queue_until``), its ``event_types``
want the event's type, and, for a job's event, its ``filter`` lets the job through.
"""

from __future__ import annotations

# Not deleted, and enabled or still queueing (disabled, but less than
# ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS ago).
RECEIVING = (
    "{subscription}.deleted_at IS NULL"
    " AND ({subscription}.enabled OR {subscription}.queue_until > now())"
)

# A subscription wants an event when its event_types hold the type, its kind's ``kind.*``,
# or ``*``, which means every job and batch event: operational events (``subscription.*``)
# go only to those that name them (core.events.PATTERNS).
WANTS = (
    "{patterns} && ARRAY[{event}, split_part({event}, '.', 1) || '.*',"
    " CASE WHEN {event} NOT LIKE 'subscription.%' THEN '*' END]"
)

# The subscription's filter (core.shaping) lets the job through: no filter, no job (an
# operational event), or the job's project among the filter's and, for each UserData key
# of the filter, the job's value (as text) among its values.
LETS_THROUGH = """(
    {subscription}.filter IS NULL OR {job}.id IS NULL OR (
        ({subscription}.filter -> 'project_id' IS NULL
         OR coalesce({subscription}.filter -> 'project_id' @> to_jsonb({job}.project_id), false))
        AND NOT EXISTS (
            SELECT FROM jsonb_each({subscription}.filter -> 'user_data') AS wanted(key, one_of)
            WHERE NOT coalesce(wanted.one_of @> to_jsonb({job}.user_data ->> wanted.key), false)
        )
    )
)"""


def wants(*, subscription: str, job: str, event: str) -> str:
    """The condition that ``subscription`` (a table's name in the statement) wants the event
    of type ``event`` about ``job`` (a ``jobs`` row's name, its columns NULL for an
    operational event): its types and its filter."""
    return " AND ".join(
        (
            WANTS.format(patterns=f"{subscription}.event_types", event=event),
            LETS_THROUGH.format(subscription=subscription, job=job),
        )
    )


def receives(*, subscription: str, job: str, event: str) -> str:
    """``wants``, and the subscription receives events now (``RECEIVING``)."""
    return (
        RECEIVING.format(subscription=subscription)
        + " AND "
        + wants(subscription=subscription, job=job, event=event)
    )
