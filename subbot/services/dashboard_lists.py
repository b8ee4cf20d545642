"""The dashboard's Payments and Jobs listings: filtered, paged, newest first; and orders needing a look."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true

from subbot.domain.clock import Clock, ensure_utc
from subbot.domain.money import Money
from subbot.services.dashboard_common import ListPage, QueryError, now_of, paging
from subbot.services.reconcile import MAX_AGE as RECONCILE_MAX_AGE
from subbot.store.db import Database
from subbot.store.models import Order, OutboxJob, Payment, User

PAYMENT_STATUSES = ("succeeded", "partially_refunded", "refunded")
PROVIDERS = ("stars", "airwallex")
#: Job states as the dashboard shows them: the outbox's, with "pending" split in two.
JOB_STATES = ("pending", "failed", "running", "done", "dead", "cancelled")
PENDING_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class PaymentRow:
    id: int
    created_at: datetime
    user_id: int
    username: str | None
    provider: str
    provider_payment_id: str
    order_id: str | None
    plan: str | None
    amount: Money
    refunded: Money
    status: str  # succeeded | partially_refunded | refunded
    refunded_at: datetime | None


PaymentPage = ListPage[PaymentRow]


def payment_filter(
    status: str | None, provider: str | None, since: datetime | None, until: datetime | None
) -> Any:
    """SQL for the Payments filters; ``since`` inclusive, ``until`` exclusive. Bad values raise QueryError."""
    conditions: list[Any] = [true()]
    if status:
        if status not in PAYMENT_STATUSES:
            raise QueryError(
                f"unknown payment status {status[:32]!r}; use one of: {', '.join(PAYMENT_STATUSES)}"
            )
        if status == "refunded":
            conditions.append(Payment.status == "refunded")
        else:
            partial = Payment.refunded_minor > 0
            conditions += [
                Payment.status == "succeeded",
                partial if status == "partially_refunded" else ~partial,
            ]
    if provider:
        if provider not in PROVIDERS:
            raise QueryError(f"unknown provider {provider[:32]!r}; use one of: {', '.join(PROVIDERS)}")
        conditions.append(Payment.provider == provider)
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise QueryError("dates must carry a timezone (UTC)")
    if since is not None and until is not None and since >= until:
        raise QueryError("the start date must be before the end date")
    if since is not None:
        conditions.append(Payment.created_at >= since)
    if until is not None:
        conditions.append(Payment.created_at < until)
    return and_(*conditions)


PAYMENT_COLUMNS = (
    Payment.id,
    Payment.created_at,
    Payment.user_id,
    User.username,
    Payment.provider,
    Payment.provider_payment_id,
    Payment.order_id,
    Order.plan_code,
    Payment.amount_minor,
    Payment.refunded_minor,
    Payment.currency,
    Payment.status,
    Payment.refunded_at,
)


def payment_select(where: Any) -> Any:
    return (
        select(*PAYMENT_COLUMNS)
        .select_from(Payment)
        .outerjoin(User, User.id == Payment.user_id)
        .outerjoin(Order, Order.id == Payment.order_id)
        .where(where)
    )


def payment_rows(rows: Iterable[Any]) -> list[PaymentRow]:
    out = []
    for r in rows:
        status = r.status
        if status == "succeeded" and r.refunded_minor:
            status = "partially_refunded"
        out.append(
            PaymentRow(
                r.id,
                ensure_utc(r.created_at),
                r.user_id,
                r.username,
                r.provider,
                r.provider_payment_id,
                r.order_id,
                r.plan_code,
                Money(r.amount_minor, r.currency),
                Money(r.refunded_minor, r.currency),
                status,
                ensure_utc(r.refunded_at) if r.refunded_at else None,
            )
        )
    return out


async def list_payments(
    db: Database,
    *,
    status: str | None = None,
    provider: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    per_page: int = 50,
) -> PaymentPage:
    """Payments newest first (by id: ids grow with time), filtered; exact total."""
    where = payment_filter(status, provider, since, until)
    paged = paging(page, per_page)
    async with db.sessions() as session:
        stmt = payment_select(where).order_by(Payment.id.desc()).offset(paged.offset).limit(paged.per_page)
        rows = payment_rows((await session.execute(stmt)).all())
        total = int(await session.scalar(select(func.count()).select_from(Payment).where(where)) or 0)
    return PaymentPage(rows, total, paged.page, paged.per_page)


@dataclass(frozen=True)
class ProblemOrder:
    order_id: str
    problem: str  # pending (card payment not confirmed yet) | amount_mismatch (paid the wrong amount)
    user_id: int
    username: str | None
    provider: str
    plan: str
    amount: Money
    created_at: datetime
    age: timedelta
    provider_ref: str | None


async def problem_orders(
    db: Database, *, clock: Clock | None = None, pending_after: timedelta = PENDING_AFTER, limit: int = 200
) -> list[ProblemOrder]:
    """Orders an operator should look at, newest first: amount mismatches, and card orders still pending.

    Pending: Airwallex orders older than ``pending_after`` and inside the window reconciliation checks
    (``subbot.services.reconcile.MAX_AGE``); "process pending payments" resolves them. Stars invoices are
    left out: Telegram confirms those synchronously, so a pending one was simply never paid.
    """
    now = now_of(clock)
    pending = and_(
        Order.status == "pending",
        Order.provider == "airwallex",
        Order.created_at <= now - pending_after,
        Order.created_at >= now - RECONCILE_MAX_AGE,
    )
    stmt = (
        select(Order, User.username)
        .outerjoin(User, User.id == Order.user_id)
        .where(or_(Order.status == "amount_mismatch", pending))
        .order_by(Order.created_at.desc(), Order.id)
        .limit(max(1, min(limit, 1000)))
    )
    async with db.sessions() as session:
        found = (await session.execute(stmt)).all()
    out = []
    for order, username in found:
        created = ensure_utc(order.created_at)
        out.append(
            ProblemOrder(
                order.id,
                "amount_mismatch" if order.status == "amount_mismatch" else "pending",
                order.user_id,
                username,
                order.provider,
                order.plan_code,
                Money(order.amount_minor, order.currency),
                created,
                now - created,
                order.provider_ref,
            )
        )
    return out


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    key: str
    state: str  # one of JOB_STATES
    attempts: int
    max_attempts: int
    last_error: str | None
    run_at: datetime
    updated_at: datetime
    payload: dict[str, Any]


JobPage = ListPage[JobRow]


def _job_state(state: str) -> Any:
    if state == "failed":  # waiting for a retry after at least one failed attempt
        return and_(OutboxJob.state == "pending", OutboxJob.attempts > 0)
    if state == "pending":
        return and_(OutboxJob.state == "pending", OutboxJob.attempts == 0)
    return OutboxJob.state == state


async def list_jobs(
    db: Database, *, states: Iterable[str] = ("failed", "dead"), page: int = 1, per_page: int = 50
) -> JobPage:
    """Outbox jobs in ``states`` (JOB_STATES; "failed": pending again after a failed try), latest first."""
    wanted = list(dict.fromkeys(states))
    unknown = [s for s in wanted if s not in JOB_STATES]
    if unknown or not wanted:
        shown = repr(unknown[0][:32]) if unknown else "none"
        raise QueryError(f"unknown job state {shown}; use some of: {', '.join(JOB_STATES)}")
    where = or_(*(_job_state(s) for s in wanted))
    paged = paging(page, per_page)
    stmt = select(OutboxJob).where(where).order_by(OutboxJob.updated_at.desc(), OutboxJob.id.desc())
    async with db.sessions() as session:
        jobs = (await session.scalars(stmt.offset(paged.offset).limit(paged.per_page))).all()
        total = int(await session.scalar(select(func.count()).select_from(OutboxJob).where(where)) or 0)
    rows = [
        JobRow(
            j.id,
            j.kind,
            j.key,
            "failed" if j.state == "pending" and j.attempts > 0 else j.state,
            j.attempts,
            j.max_attempts,
            j.last_error,
            ensure_utc(j.run_at),
            ensure_utc(j.updated_at),
            dict(j.payload),
        )
        for j in jobs
    ]
    return JobPage(rows, total, paged.page, paged.per_page)
