"""database, subscription and payment: reads, and writes inside transactions that are always rolled back."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import delete, func, select

from subbot.domain.subscriptions import SubStatus, days_left, extended_period
from subbot.ops.prodtests.core import Fail, Skip
from subbot.store.migrate import SchemaState
from subbot.store.models import Flag, InboundEvent, Order, OutboxJob, Payment, PlanRow, Subscription, User

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from subbot.ops.prodtests.core import ProductionTestSuite

TEST_MARK = "prodtest"
SUCCESS_RATE_MIN = 0.95
SUCCESS_RATE_MIN_SAMPLES = 20
PAID = ("paid", "refunded")
FAILED = ("cancelled", "amount_mismatch")


class _Rollback(Exception):
    """Raised inside a write transaction to roll it back after the checks passed."""


def _db(suite: ProductionTestSuite) -> Any:
    if suite.db_error is not None:
        raise Fail(suite.db_error)
    return suite.db


async def check_database(suite: ProductionTestSuite, details: list[str]) -> str:
    from subbot.ops.supabase import probe

    db = _db(suite)
    report = await probe(db, suite.settings)
    details.append(f"{report.server_version} at {report.url}, {report.latency_ms} ms round trip")
    if report.pooler:
        details.append("Supabase transaction pooler: prepared-statement cache disabled")
    if report.schema != SchemaState.CURRENT.value:
        raise Fail(
            f"schema {report.schema} (database {report.revision or 'empty'}, code {report.head}): "
            "run `subbot migrate`",
            details,
        )
    async with db.sessions() as session:
        users = await _count(session, select(func.count()).select_from(User))
        active = await _count(
            session, select(func.count()).select_from(Subscription).where(Subscription.status == "active")
        )
        payments = await _count(session, select(func.count()).select_from(Payment))
        backlog = await _count(
            session,
            select(func.count()).select_from(OutboxJob).where(OutboxJob.state.in_(("pending", "running"))),
        )
        dead = await _count(
            session, select(func.count()).select_from(OutboxJob).where(OutboxJob.state == "dead")
        )
    details.append(f"users {users}, active subscriptions {active}, payments {payments}")
    details.append(f"outbox backlog {backlog}, dead jobs {dead}")

    key = f"{TEST_MARK}:{secrets.token_hex(8)}"
    started = time.perf_counter()
    try:
        async with db.write() as session:
            session.add(
                Flag(key=key, value={"test": True, "by": "production_tests"}, updated_at=datetime.now(UTC))
            )
            await session.flush()
            row = await session.get(Flag, key)
            if row is None or row.value.get("test") is not True:
                raise Fail("a row written in a transaction could not be read back", details)
            await session.execute(delete(Flag).where(Flag.key == key))
            raise _Rollback
    except _Rollback:
        pass
    write_ms = (time.perf_counter() - started) * 1000
    async with db.sessions() as session:
        if await session.get(Flag, key) is not None:
            raise Fail(f"the test row {key} survived its rolled-back transaction", details)
    details.append(f"write + read + delete of a test row, rolled back: {write_ms:.0f} ms")
    return f"schema {report.revision} current, {report.latency_ms} ms, {users} users, {active} active"


async def _count(session: AsyncSession, stmt: Any) -> int:
    return int(await session.scalar(stmt) or 0)


def _rules(details: list[str]) -> None:
    """The domain rules on fixed dates: renewal extends from the end, expiry restarts from now."""
    now = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
    month = timedelta(days=30)
    cases: list[tuple[str, Any, Any]] = [
        ("new purchase starts now", extended_period(now, None, False, month), (now, now + month)),
        (
            "renewal before the end extends from the end",
            extended_period(now, now + timedelta(days=5), True, month),
            (now + timedelta(days=5), now + timedelta(days=35)),
        ),
        (
            "purchase after expiry starts now",
            extended_period(now, now - timedelta(days=1), False, month),
            (now, now + month),
        ),
        ("lifetime has no end", extended_period(now, None, False, None), (now, None)),
        ("days left round up", days_left(now, now + timedelta(days=2, hours=1)), 3),
        ("days left at the end is 0", days_left(now, now), 0),
        ("lifetime has no days left", days_left(now, None), None),
    ]
    wrong = [f"{name}: got {got}, expected {want}" for name, got, want in cases if got != want]
    if wrong:
        raise Fail("subscription rules are wrong: " + wrong[0], [*details, *wrong[1:]])
    details.append(f"{len(cases)} rule cases hold (extension from the end, restart after expiry, lifetime)")


async def check_subscription(suite: ProductionTestSuite, details: list[str]) -> str:
    _rules(details)
    db = _db(suite)
    now = datetime.now(UTC)
    code = f"{TEST_MARK}-{secrets.token_hex(4)}"
    # Negative ids are never real Telegram users: a test row cannot collide with a member.
    user_id = -(10**12 + secrets.randbelow(10**12))
    month = timedelta(days=30)
    try:
        async with db.write() as session:
            session.add(
                PlanRow(code=code, title="production test", duration_days=30, created_at=now, updated_at=now)
            )
            session.add(User(id=user_id, username=None, first_name=TEST_MARK, created_at=now, updated_at=now))
            await session.flush()
            starts, ends = extended_period(now, None, False, month)
            sub = Subscription(
                user_id=user_id,
                plan_code=code,
                starts_at=starts,
                ends_at=ends,
                status=SubStatus.ACTIVE.value,
                source="grant",
                created_at=now,
                updated_at=now,
            )
            session.add(sub)
            await session.flush()
            later = now + timedelta(days=10)
            _, new_end = extended_period(later, sub.ends_at, True, month)
            sub.ends_at, sub.updated_at = new_end, later
            await session.flush()
            stored = await session.get(Subscription, sub.id, populate_existing=True)
            if stored is None or stored.ends_at != now + 2 * month:
                got = None if stored is None else stored.ends_at
                raise Fail(f"renewal in the database: ends_at {got}, expected {now + 2 * month}", details)
            left = days_left(later, stored.ends_at)
            if left != 50:
                raise Fail(f"days left after renewal: {left}, expected 50", details)
            raise _Rollback
    except _Rollback:
        pass
    async with db.sessions() as session:
        if await session.get(User, user_id) is not None:
            raise Fail("the test subscription survived its rolled-back transaction", details)
    details.append("created and renewed a test subscription in a transaction, rolled back: 30 + 30 days")
    return "rules hold in memory and in the database (test rows rolled back)"


async def check_payment(suite: ProductionTestSuite, details: list[str]) -> str:
    s = suite.settings
    problems: list[str] = []
    if s.airwallex_enabled:
        assert s.airwallex_client_id is not None and s.airwallex_api_key is not None
        login = await _airwallex_login(
            suite, s.airwallex_base_url, s.airwallex_client_id, s.airwallex_api_key.get_secret_value()
        )
        (details if login is None else problems).append(
            login or f"Airwallex login ok at {s.airwallex_base_url}"
        )
        if s.airwallex_webhook_secret is None:
            problems.append(
                "AIRWALLEX_WEBHOOK_SECRET is not set: every card payment webhook is refused (503)"
            )
        else:
            details.append("Airwallex webhook secret configured")
    else:
        details.append("card payments (Airwallex) not configured; Telegram Stars only")
    if suite.db_error is not None:
        problems.append(f"payment history unavailable: {suite.db_error}")
    else:
        await _history(suite, details, problems)
    if problems:
        raise Fail(problems[0], [*details, *problems[1:]])
    return "payment configuration ok; " + next(
        (d for d in details if d.startswith("last 7 days")), "no recent payments"
    )


async def _airwallex_login(suite: ProductionTestSuite, base: str, client_id: str, api_key: str) -> str | None:
    """None when Airwallex issues a token; else the problem.  Login only: no intent is created."""
    try:
        response = await suite.http.post(
            f"{base.rstrip('/')}/api/v1/authentication/login",
            headers={"x-client-id": client_id, "x-api-key": api_key},
            json={},
        )
    except httpx.HTTPError as exc:
        return f"Airwallex unreachable at {base} ({exc.__class__.__name__})"
    if response.status_code in (200, 201):
        try:
            ok = bool(response.json().get("token"))
        except ValueError:
            ok = False
        return None if ok else f"Airwallex login answered {response.status_code} without a token"
    if response.status_code in (401, 403):
        return (
            f"Airwallex refused the credentials (HTTP {response.status_code}): "
            "check AIRWALLEX_CLIENT_ID and AIRWALLEX_API_KEY"
        )
    return f"Airwallex login failed: HTTP {response.status_code}"


async def _history(suite: ProductionTestSuite, details: list[str], problems: list[str]) -> None:
    db = suite.db
    since = datetime.now(UTC) - timedelta(days=7)
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Order.status, func.count()).where(Order.created_at >= since).group_by(Order.status)
            )
        ).all()
        by_status = {str(status): int(n) for status, n in rows}
        day = await _count(
            session,
            select(func.count())
            .select_from(Payment)
            .where(Payment.created_at >= datetime.now(UTC) - timedelta(days=1)),
        )
        unapplied = await _count(
            session,
            select(func.count())
            .select_from(InboundEvent)
            .where(InboundEvent.applied_at.is_(None), InboundEvent.received_at >= since),
        )
    paid = sum(by_status.get(s, 0) for s in PAID)
    failed = sum(by_status.get(s, 0) for s in FAILED)
    attempts = paid + failed
    if attempts:
        rate = paid / attempts
        details.append(
            f"last 7 days: {paid} paid, {failed} failed → success rate {rate:.1%} "
            f"({by_status.get('pending', 0)} pending, {by_status.get('expired', 0)} abandoned)"
        )
        if attempts >= SUCCESS_RATE_MIN_SAMPLES and rate < SUCCESS_RATE_MIN:
            problems.append(f"payment success rate {rate:.1%} is below {SUCCESS_RATE_MIN:.0%} over 7 days")
    else:
        details.append("last 7 days: no completed payment attempts")
    details.append(f"payments in the last 24 h: {day}")
    if unapplied:
        details.append(
            f"{unapplied} inbound payment event(s) stored but not applied in 7 days: see "
            "`subbot payments reconcile` and logs/telegram_subscription_bot_payments.log"
        )


__all__ = ["Skip", "check_database", "check_payment", "check_subscription"]
