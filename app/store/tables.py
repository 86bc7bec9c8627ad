"""The tables (SQLAlchemy Core), on one ``metadata`` that Alembic's migrations are checked
against.

::

    jobs ─┬─< job_events ──── outbox ─< deliveries ─< delivery_attempts
          │   (append-only)   (1 per event)  >─ subscriptions
          ├─< callbacks       (raw ICE callbacks, kept whatever their outcome)
          └─< jobs            (a batch's sub-jobs, through batch_id)
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, UUID

from app.core.access import Role
from app.core.shaping import DEFAULT_MAX_IN_FLIGHT
from app.core.statuses import CallbackOutcome, DeliveryStatus, EventSource, JobKind, JobStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint (adding a value later is a plain migration)."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kind", _enum(JobKind, "kind"), nullable=False),
    sa.Column("status", _enum(JobStatus, "status"), nullable=False),
    sa.Column("ice_status", sa.Text),
    sa.Column("ice_job_id", sa.Text, unique=True),
    sa.Column("project_id", sa.Text),
    sa.Column("media_id", sa.Text),
    sa.Column("media_url", sa.Text),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("user_data", JSONB),
    # The ICE parameters as submitted (UserData included), so a resubmit is identical.
    sa.Column("parameters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("batch_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="RESTRICT")),
    # sha256 of the per-job callback token; the token itself is never stored.
    sa.Column("callback_token_hash", BYTEA, unique=True),
    sa.Column("client_token", sa.Text),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_hash", BYTEA),
    _created_at(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    # When icehook last heard about the job from ICE (callback or poll).
    sa.Column("heard_at", sa.DateTime(timezone=True)),
    # When the sweeper should ask ICE next; NULL once the job is terminal.
    sa.Column("check_at", sa.DateTime(timezone=True)),
    sa.Column("check_count", sa.Integer, nullable=False, server_default="0"),
    # Held while one worker confirms the job with ICE (callbacks or sweep), renewed by its
    # heartbeat; expires soon after it dies. Only the holder (``lease_owner``, one id per
    # process) records what ICE said.
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("lease_owner", UUID(as_uuid=True)),
    # Set while ICE cannot show whether a submission whose answer was lost exists (a batch,
    # when ICE lists no scene batch); cleared by the job's next move (flows.submit).
    sa.Column("fate_unknown_since", sa.DateTime(timezone=True)),
    # A batch's sub-jobs that ICE reports succeeded and failed (NULL for a job, and for a
    # batch until ICE's answer lists its sub-jobs).
    sa.Column("sub_jobs_succeeded", sa.Integer),
    sa.Column("sub_jobs_failed", sa.Integer),
    # When the submission was last sent to ICE: ICE's list is given its grace from then.
    sa.Column("last_sent_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Index("ix_jobs_created_at_id", "created_at", "id"),
    sa.Index("ix_jobs_status_created_at_id", "status", "created_at", "id"),
    sa.Index("ix_jobs_project_id_created_at_id", "project_id", "created_at", "id"),
    sa.Index("ix_jobs_batch_id", "batch_id"),
    # Jobs finished per hour (the console's overview), and finished jobs past their history
    # retention.
    sa.Index(
        "ix_jobs_completed_at", "completed_at", postgresql_where=sa.text("completed_at IS NOT NULL")
    ),
    # The UserData search (user_data @> {...}): jsonb_path_ops holds one hash per value,
    # smaller than the default operator class, and containment is all it is asked.
    sa.Index(
        "ix_jobs_user_data",
        "user_data",
        postgresql_using="gin",
        postgresql_ops={"user_data": "jsonb_path_ops"},
    ),
    sa.Index("ix_jobs_check_at", "check_at", postgresql_where=sa.text("check_at IS NOT NULL")),
    sa.Index(
        "ix_jobs_fate_unknown_since",
        "fate_unknown_since",
        postgresql_where=sa.text("fate_unknown_since IS NOT NULL"),
    ),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "job_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("from_status", _enum(JobStatus, "from_status")),
    sa.Column("to_status", _enum(JobStatus, "to_status"), nullable=False),
    sa.Column("source", _enum(EventSource, "source"), nullable=False),
    sa.Column("payload", JSONB),
    _created_at(),
    # Status only moves forward, so a job reaches each status at most once: the database
    # itself refuses a second event for the same transition.
    # Also how a job's events are found (at most nine: a second index on job_id would hold
    # every event again).
    sa.UniqueConstraint("job_id", "to_status"),
)

callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # sha256 over token hash and raw body: the same delivery stored twice is one row.
    sa.Column("dedup_key", BYTEA, unique=True),
    sa.Column("token_hash", BYTEA),
    sa.Column("job_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
    sa.Column("ice_job_id", sa.Text),
    sa.Column("event_type", sa.Text),
    sa.Column("ice_status", sa.Text),
    sa.Column("body", BYTEA, nullable=False),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("peer", sa.Text),
    # The X-Request-ID of the request that delivered it: its log lines carry the same id.
    sa.Column("request_id", sa.Text),
    # Whether X-ICE-SIGNATURE was verified: NULL when no AuthKey is configured, false when
    # one is but ICE sent none (kept as a hint: every callback is confirmed with ICE).
    sa.Column("signed", sa.Boolean),
    # Of a pending one, when tracing is on: the W3C traceparent of the request that brought
    # it, so that the worker's confirmation continues that trace.
    sa.Column("traceparent", sa.Text),
    sa.Column("outcome", _enum(CallbackOutcome, "outcome"), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_callbacks_received_at_id", "received_at", "id"),
    sa.Index("ix_callbacks_outcome_received_at", "outcome", "received_at"),
    sa.Index("ix_callbacks_job_id", "job_id"),
    sa.Index(
        "ix_callbacks_pending_job_id", "job_id", postgresql_where=sa.text("outcome = 'pending'")
    ),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.Text),
    # Webhook secrets sign with HMAC, so they are kept (not hashed), and shown only once.
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
    sa.Column("failing_since", sa.DateTime(timezone=True)),
    # Since when it is disabled, and until when its events are still queued for it (so that
    # enabling it again catches up without a replay).
    sa.Column("disabled_at", sa.DateTime(timezone=True)),
    sa.Column("queue_until", sa.DateTime(timezone=True)),
    # Its limits, across all workers: requests in flight, and a second (None: no limit), the
    # pace kept by ``paced_until`` (when the next request may start, at the latest).
    sa.Column(
        "max_in_flight", sa.Integer, nullable=False, server_default=str(DEFAULT_MAX_IN_FLIGHT)
    ),
    sa.Column("max_per_second", sa.Float),
    sa.Column("paced_until", sa.DateTime(timezone=True)),
    # Which of the events it wants it receives (core.shaping.EventFilter as JSON; None: all).
    sa.Column("filter", JSONB(none_as_null=True)),
    # Static headers sent with each webhook (a gateway's token): write-only through the API.
    sa.Column("headers", JSONB(none_as_null=True)),
    # ``v1``: HMAC-SHA256 with a ``whsec_`` secret; ``v1a``: ed25519 with a ``whsk_`` key.
    sa.Column("signature_scheme", sa.Text, nullable=False, server_default="v1"),
    _created_at(),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("signature_scheme IN ('v1', 'v1a')", name="signature_scheme"),
    sa.CheckConstraint(
        "max_in_flight >= 1 AND (max_per_second IS NULL OR max_per_second >= 0.01)",
        name="limits",
    ),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    # The Standard Webhooks `webhook-id`: the same on every retry of this event.
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    # None for an operational event (``subscription.disabled``), which belongs to no job.
    sa.Column("job_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id", ondelete="CASCADE")),
    sa.Column(
        "job_event_id",
        sa.BigInteger,
        sa.ForeignKey("job_events.id", ondelete="CASCADE"),
        unique=True,
    ),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    # When tracing is on: the W3C traceparent of the work that recorded the event, which
    # each of its webhooks' spans continues.
    sa.Column("traceparent", sa.Text),
    _created_at(),
    sa.Index("ix_outbox_job_id_id", "job_id", "id"),
    sa.Index("ix_outbox_created_at", "created_at"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "message_id",
        sa.BigInteger,
        sa.ForeignKey("outbox.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "subscription_id",
        UUID(as_uuid=True),
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Copied from the message: ordering per (subscription, job) and the audit filters. None
    # for operational events, which are ordered among themselves.
    sa.Column("job_id", UUID(as_uuid=True)),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("status", _enum(DeliveryStatus, "status"), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    _created_at(),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("message_id", "subscription_id"),
    sa.Index("ix_deliveries_job_id", "job_id"),
    # Partial: each serves queries that only look for pending (or dead) deliveries, a few
    # among many delivered ones. The claim's check for an earlier undone event of the same
    # job and subscription; the oldest pending one; lists of dead ones; what is due.
    sa.Index(
        "ix_deliveries_pending_order",
        "subscription_id",
        "job_id",
        "message_id",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_deliveries_pending_created_at",
        "created_at",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index("ix_deliveries_dead_id", "id", postgresql_where=sa.text("status = 'dead'")),
    sa.Index(
        "ix_deliveries_due_by_subscription",
        "subscription_id",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_deliveries_leased",
        "subscription_id",
        postgresql_where=sa.text("status = 'pending' AND lease_until IS NOT NULL"),
    ),
)


def is_literally(column: sa.Column[Any], value: enum.StrEnum) -> sa.ColumnElement[bool]:
    """``column = '<value>'`` with the value written into the statement, not sent as a
    parameter: PostgreSQL uses a partial index (pending deliveries or callbacks, dead
    deliveries) only when the statement's own text implies its condition, which a cached
    generic plan for a parameter cannot."""
    return column == sa.literal(value.value, sa.Text, literal_execute=True)


delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "delivery_id",
        sa.BigInteger,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("response_excerpt", sa.Text),
    sa.Index("ix_delivery_attempts_delivery_id_id", "delivery_id", "id"),
)


# ICE call budgets shared by all processes (store.budgets): when each one's next call may go.
ice_budgets = sa.Table(
    "ice_budgets",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
)


# Retention (store.retention): for each kind of record purged, the time before which it may
# have been removed, so that an audit view can say so.
purge_horizons = sa.Table(
    "purge_horizons",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("purged_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


# Jobs and deliveries by status (store.counts), kept by triggers (migration 20261204_0001):
# each change of a row's status adds rows to ``status_count_changes`` (insert-only, so no
# writer waits for another), folded from time to time into ``status_counts``.
status_counts = sa.Table(
    "status_counts",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),  # the table counted
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)
status_count_changes = sa.Table(
    "status_count_changes",
    metadata,
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
)

# Who is signed in to the console. The cookie holds a random token; only its sha256 is kept,
# so that reading this table signs nobody in. Signing out deletes the row; expired rows are
# removed by the housekeeping.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", BYTEA, primary_key=True),
    sa.Column("role", _enum(Role, "role"), nullable=False),
    # Of the key signed in with (store.sessions): its session ends when the key is removed.
    sa.Column("key_fingerprint", sa.Text, nullable=False),
    _created_at(),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_console_sessions_expires_at", "expires_at"),
)
