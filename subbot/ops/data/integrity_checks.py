"""The integrity checks themselves (run by subbot.ops.integrity): each adds Findings to its Check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, exists, func, inspect, or_, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from subbot.ops.data.codec import tables
from subbot.store.models import (
    Base,
    InboundEvent,
    Membership,
    Order,
    OutboxJob,
    Payment,
    PlanChat,
    Subscription,
    User,
)
from subbot.store.subscriptions import active_at
from subbot.store.types import UTCDateTime

ACCESS_SOURCES = ("payment", "grant", "import", "lifetime")


@dataclass
class Finding:
    subject: str  # e.g. "subscription 12"
    detail: str


@dataclass
class Check:
    name: str
    title: str
    findings: list[Finding] = field(default_factory=list)
    truncated: bool = False  # more than ``limit`` findings; only the first ones are listed


@dataclass
class CheckContext:
    conn: AsyncConnection
    now: datetime
    grace: timedelta
    exempt: frozenset[int]
    limit: int


async def _rows(c: CheckContext, stmt: Any) -> tuple[list[Any], bool]:
    rows = list((await c.conn.execute(stmt.limit(c.limit + 1))).all())
    return rows[: c.limit], len(rows) > c.limit


async def check_access_without_source(c: CheckContext, check: Check) -> None:
    paid = exists().where(Payment.order_id == Subscription.order_id)
    stmt = (
        select(
            Subscription.id,
            Subscription.user_id,
            Subscription.plan_code,
            Subscription.source,
            Subscription.order_id,
        )
        .where(active_at(c.now))
        .where(or_(Subscription.source.not_in(ACCESS_SOURCES), and_(Subscription.source == "payment", ~paid)))
        .order_by(Subscription.id)
    )
    rows, check.truncated = await _rows(c, stmt)
    for sid, uid, plan, source, order in rows:
        why = (
            f"source {source!r} is not one of {', '.join(ACCESS_SOURCES)}"
            if source not in ACCESS_SOURCES
            else f"no payment is recorded for its order {order}"
        )
        check.findings.append(Finding(f"subscription {sid}", f"user {uid}, plan {plan}: active, but {why}"))


async def check_payment_without_subscription(c: CheckContext, check: Check) -> None:
    covered = exists().where(
        Subscription.user_id == Payment.user_id,
        Subscription.plan_code == Order.plan_code,
        or_(
            Subscription.order_id == Payment.order_id,  # created by this payment
            and_(
                Subscription.created_at <= Payment.created_at, Subscription.updated_at >= Payment.created_at
            ),
        ),  # or an existing subscription extended by it
    )
    stmt = (
        select(Payment.id, Payment.user_id, Payment.order_id, Payment.provider, Payment.provider_payment_id)
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.status == "succeeded", ~covered)
        .order_by(Payment.id)
    )
    rows, check.truncated = await _rows(c, stmt)
    for pid, uid, order, provider, ppid in rows:
        check.findings.append(
            Finding(
                f"payment {pid}", f"user {uid}, order {order} ({provider} {ppid}): no subscription for it"
            )
        )


async def _members(c: CheckContext) -> list[Any]:
    """Joined memberships in plan chats of non-whitelisted members, with what their access looks like."""
    sub_active = active_at(c.now)
    # when access through a subscription ended: its end, or when it was revoked (whichever came first)
    ended = case(
        (
            Subscription.status == "revoked",
            case(
                (Subscription.ends_at < Subscription.updated_at, Subscription.ends_at),
                else_=Subscription.updated_at,
            ),
        ),
        else_=Subscription.ends_at,
    )
    plan_chats = select(PlanChat.chat_id).distinct().scalar_subquery()
    stmt = (
        select(
            Membership.id,
            Membership.user_id,
            Membership.chat_id,
            type_coerce(func.max(case((sub_active, 1), else_=0)), Integer).label("active"),
            func.count(Subscription.id).label("subs"),
            type_coerce(func.max(ended), UTCDateTime()).label("last_end"),
        )
        .join(User, User.id == Membership.user_id)
        .outerjoin(PlanChat, PlanChat.chat_id == Membership.chat_id)
        .outerjoin(
            Subscription,
            and_(Subscription.user_id == Membership.user_id, Subscription.plan_code == PlanChat.plan_code),
        )
        .where(
            Membership.state == "joined",
            User.is_whitelisted.is_(False),
            Membership.chat_id.in_(plan_chats),
        )
        .group_by(Membership.id, Membership.user_id, Membership.chat_id)
        .order_by(Membership.id)
    )
    return [r for r in (await c.conn.execute(stmt)).all() if r.user_id not in c.exempt and not r.active]


async def check_expired_in_group(c: CheckContext, check: Check) -> None:
    cutoff = c.now - c.grace
    for row in await _members(c):
        if row.subs and (row.last_end is None or row.last_end <= cutoff):
            if len(check.findings) >= c.limit:
                check.truncated = True
                break
            ended = row.last_end.isoformat() if row.last_end else "unknown"
            check.findings.append(
                Finding(
                    f"membership {row.id}",
                    f"user {row.user_id} is still in chat {row.chat_id}; access ended {ended}, grace is over",
                )
            )


async def check_in_group_without_access(c: CheckContext, check: Check) -> None:
    for row in await _members(c):
        if not row.subs:
            if len(check.findings) >= c.limit:
                check.truncated = True
                break
            check.findings.append(
                Finding(
                    f"membership {row.id}",
                    f"user {row.user_id} is in chat {row.chat_id} and never had access to it "
                    "(not whitelisted, no subscription to a plan opening it)",
                )
            )


_UNIQUE = (
    ("payments", ("provider", "provider_payment_id")),
    ("refunds", ("provider", "provider_refund_id")),
    ("inbound_events", ("provider", "event_id")),
)


def _unique_sets(conn: Connection, table: str) -> list[set[str]]:
    insp = inspect(conn)
    found = [{str(c) for c in u["column_names"]} for u in insp.get_unique_constraints(table)]
    found += [{str(c) for c in i["column_names"]} for i in insp.get_indexes(table) if i.get("unique")]
    return found


async def check_duplicate_provider_ids(c: CheckContext, check: Check) -> None:
    for table_name, names in _UNIQUE:
        table = Base.metadata.tables[table_name]
        cols = [table.c[n] for n in names]
        uniques = await c.conn.run_sync(_unique_sets, table.name)
        if set(names) not in uniques:
            check.findings.append(
                Finding(f"table {table.name}", f"the unique constraint on ({', '.join(names)}) is missing")
            )
        stmt = select(*cols, func.count().label("n")).group_by(*cols).having(func.count() > 1).order_by(*cols)
        rows, truncated = await _rows(c, stmt)
        check.truncated = check.truncated or truncated
        for row in rows:
            key = " ".join(str(v) for v in row[:-1])
            check.findings.append(Finding(f"{table.name} {key}", f"{row[-1]} rows share this provider id"))


async def check_orphans(c: CheckContext, check: Check) -> None:
    for table in tables():
        for fk in table.foreign_key_constraints:
            if len(fk.elements) != 1:
                continue
            child, parent = fk.elements[0].parent, fk.elements[0].column
            key = list(table.primary_key.columns)
            stmt = (
                select(*key, child)
                .select_from(table.outerjoin(parent.table, child == parent))
                .where(child.is_not(None), parent.is_(None))
                .order_by(*key)
            )
            rows, truncated = await _rows(c, stmt)
            check.truncated = check.truncated or truncated
            for row in rows:
                ident = "/".join(str(v) for v in row[:-1])
                check.findings.append(
                    Finding(
                        f"{table.name} {ident}",
                        f"{child.name}={row[-1]} points to a missing {parent.table.name}",
                    )
                )


async def check_dead_jobs(c: CheckContext, check: Check) -> None:
    stmt = (
        select(OutboxJob.id, OutboxJob.kind, OutboxJob.key, OutboxJob.attempts, OutboxJob.last_error)
        .where(OutboxJob.state == "dead")
        .order_by(OutboxJob.id)
    )
    rows, check.truncated = await _rows(c, stmt)
    for jid, kind, key, attempts, error in rows:
        check.findings.append(
            Finding(
                f"outbox job {jid}", f"{kind} {key}: dead after {attempts} attempt(s): {(error or '')[:120]}"
            )
        )


async def check_unapplied_events(c: CheckContext, check: Check) -> None:
    stmt = (
        select(
            InboundEvent.id,
            InboundEvent.provider,
            InboundEvent.event_id,
            InboundEvent.kind,
            InboundEvent.received_at,
        )
        .where(InboundEvent.applied_at.is_(None), InboundEvent.received_at < c.now - timedelta(days=1))
        .order_by(InboundEvent.id)
    )
    rows, check.truncated = await _rows(c, stmt)
    for eid, provider, event_id, kind, received in rows:
        check.findings.append(
            Finding(
                f"inbound event {eid}",
                f"{provider} {kind} {event_id} received {received.isoformat()}, never applied",
            )
        )


async def check_amount_mismatch(c: CheckContext, check: Check) -> None:
    stmt = (
        select(Order.id, Order.user_id, Order.provider, Order.amount_minor, Order.currency)
        .where(Order.status == "amount_mismatch")
        .order_by(Order.created_at, Order.id)
    )
    rows, check.truncated = await _rows(c, stmt)
    for oid, uid, provider, amount, currency in rows:
        check.findings.append(
            Finding(f"order {oid}", f"user {uid}, {provider}: paid amount differs from {amount} {currency}")
        )
    events = (
        select(InboundEvent.id, InboundEvent.provider, InboundEvent.event_id, InboundEvent.error)
        .where(InboundEvent.error.like("amount mismatch%"))
        .order_by(InboundEvent.id)
    )
    rows, truncated = await _rows(c, events)
    check.truncated = check.truncated or truncated
    for eid, provider, event_id, error in rows:
        check.findings.append(Finding(f"inbound event {eid}", f"{provider} {event_id}: {error}"))


CHECKS: Sequence[tuple[str, str, Callable[[CheckContext, Check], Awaitable[None]]]] = (
    ("access_without_source", "Active access without a payment, grant, import or lifetime source",
     check_access_without_source),
    ("payment_without_subscription", "Succeeded payments without a subscription for their order",
     check_payment_without_subscription),
    ("expired_in_group", "Expired or revoked members still in the group after the grace period",
     check_expired_in_group),
    ("in_group_without_access", "Members in the group who never had access", check_in_group_without_access),
    ("duplicate_provider_ids", "Duplicate provider ids (payments, refunds, events)",
     check_duplicate_provider_ids),
    ("orphans", "Rows pointing to missing rows", check_orphans),
    ("dead_outbox_jobs", "Dead outbox jobs (side effects given up on)", check_dead_jobs),
    ("unapplied_events", "Inbound payment events never applied (older than 1 day)", check_unapplied_events),
    ("amount_mismatch", "Payments whose amount did not match the order", check_amount_mismatch),
)  # fmt: skip
