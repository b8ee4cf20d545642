"""SQLAlchemy models: the data of DESIGN.md. Money is minor units + currency; times are aware UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from subbot.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger autoincrement primary keys are plain INTEGER on SQLite (rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(256), default="")
    last_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(16))
    is_whitelisted: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_bot_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_users_username_lower", "username"),
        Index("ix_users_created_at", "created_at", "id"),
        # and ix_users_username_ci on lower(username): an expression index, created by migration 0007
    )


class PlanRow(Base):
    __tablename__ = "plans"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    duration_days: Mapped[int | None] = mapped_column(Integer)
    stars: Mapped[int | None] = mapped_column(Integer)
    card_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    card_currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlanChat(Base):
    __tablename__ = "plan_chats"
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code", ondelete="CASCADE"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    join_mode: Mapped[str] = mapped_column(String(16), default="invite")  # invite | request


class Order(Base):
    """A checkout attempt. ``id`` is an opaque random token, safe to show and to put in URLs."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"))
    provider: Mapped[str] = mapped_column(String(16))  # stars | airwallex
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_payment_id: Mapped[str] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="succeeded")  # succeeded | refunded
    created_at: Mapped[datetime]
    refunded_at: Mapped[datetime | None]
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (UniqueConstraint("provider", "provider_payment_id"),)


class RefundRow(Base):
    """A refund asked of a provider; ``provider_refund_id`` is unique so events apply once."""

    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_refund_id: Mapped[str] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # received | accepted | settled | failed
    reason: Mapped[str] = mapped_column(String(128), default="")
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("provider", "provider_refund_id"),)


class Subscription(Base):
    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]  # None = lifetime
    status: Mapped[str] = mapped_column(String(16), default="active")
    source: Mapped[str] = mapped_column(String(16))  # payment | grant | import | lifetime
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    next_reminder_at: Mapped[datetime | None]  # when the next reminder is due; NULL = none left
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_subscriptions_status_ends_at", "status", "ends_at"),
        Index("ix_subscriptions_status_ends_at_user_id", "status", "ends_at", "user_id"),
        Index("ix_subscriptions_status_next_reminder_at", "status", "next_reminder_at"),
    )


class Membership(Base):
    __tablename__ = "memberships"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # invited | joined | left | removed | unknown
    source: Mapped[str] = mapped_column(String(16))  # invite | request | import | manual
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("user_id", "chat_id"),)


class InviteLink(Base):
    __tablename__ = "invite_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    link: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None]


class OutboxJob(Base):
    """A side effect to perform; written in the same transaction as the state change that causes it."""

    __tablename__ = "outbox_jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(191), unique=True)
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|running|done|dead|cancelled
    run_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # lower runs first
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_outbox_jobs_state_run_at", "state", "run_at"),
        Index("ix_outbox_jobs_state_priority_run_at", "state", "priority", "run_at"),
    )


class InboundEvent(Base):
    """Every paying inbound event, stored under its provider id before it is applied."""

    __tablename__ = "inbound_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    details: Mapped[dict[str, Any]]


class Flag(Base):
    __tablename__ = "flags"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class Broadcast(Base):
    """A message to a segment of members, delivered through the outbox (one job per recipient)."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(16))  # active | expiring | expired | all
    segment_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queuing")  # queuing | sending | done | cancelled
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    total: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None]


class AlertState(Base):
    """The monitor's view of one component, shared by every instance (alerts fire on transitions only)."""

    __tablename__ = "alert_states"
    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | degraded | critical
    severity: Mapped[str | None] = mapped_column(String(8))  # SEV-1 | SEV-2 | SEV-3
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[datetime]
    last_check_at: Mapped[datetime]
    last_alert_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]]


class AlertAttempt(Base):
    """Every notification attempt, delivered or not."""

    __tablename__ = "alert_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    transport: Mapped[str] = mapped_column(String(16))  # slack | telegram
    component: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class AdminUser(Base):
    """A dashboard account (`subbot admin create-user`); only an argon2 hash of the password is kept."""

    __tablename__ = "admin_users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # lower case
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "admin_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # the absolute lifetime; the idle timeout is judged from last_seen_at
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    flash: Mapped[list[Any] | None] = mapped_column(JSON)  # [[level, text], ...] shown on the next page


class AdminLoginAttempt(Base):
    """Every dashboard login attempt: lockout is judged from these, and the monitor counts the failures."""

    __tablename__ = "admin_login_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64))  # as typed (lower case), whether it exists or not
    ip: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))  # ok | failed | locked
    __table_args__ = (
        Index("ix_admin_login_attempts_username_at", "username", "at"),
        Index("ix_admin_login_attempts_ip_at", "ip", "at"),
    )


class IncidentRow(Base):
    """An incident (the runbook's SEV-1/2/3); every change is a conditional UPDATE on ``version``."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(8))  # SEV-1 | SEV-2 | SEV-3
    status: Mapped[str] = mapped_column(String(16), index=True)  # investigating … monitoring | resolved
    components: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))  # monitor | manual
    # "monitor" while the monitor's incident is open, NULL otherwise: the database keeps it to one.
    open_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    detected_at: Mapped[datetime] = mapped_column(index=True)
    notified_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    recovered_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=1)
    last_update_at: Mapped[datetime]
    next_update_at: Mapped[datetime | None]
    reminded_for: Mapped[datetime | None]  # the next_update_at a reminder was sent for
    root_cause: Mapped[str | None] = mapped_column(Text)
    fix: Mapped[str | None] = mapped_column(Text)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)  # maintenance mode switched on by it
    created_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class IncidentEvent(Base):
    """One timeline entry: detected, opened, notified, escalated, acknowledged, update, resolved, …"""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    __table_args__ = (Index("ix_incident_events_incident_id_at", "incident_id", "at"),)


class IncidentNotification(Base):
    """One message to one channel (Slack status webhook, a Telegram chat); written with the change that
    caused it and delivered after the commit, so it is never lost and never sent twice (unique key)."""

    __tablename__ = "incident_notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(191), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # initial|update|ack|escalation|reminder|resolution
    level: Mapped[int | None] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(16))  # slack | telegram
    target: Mapped[str] = mapped_column(String(32))  # "status" (Slack webhook) or a Telegram chat id
    text: Mapped[str] = mapped_column(Text)  # as sent: Slack mrkdwn or Telegram HTML
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    __table_args__ = (Index("ix_incident_notifications_state_next_attempt_at", "state", "next_attempt_at"),)
