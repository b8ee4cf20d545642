"""CSV export of members and payments, streamed in batches, safe to open in a spreadsheet.

Each batch is read in its own short transaction (keyset on the primary key), so a slow download never
holds a database connection; the file is therefore not one snapshot: a row changed during the export
appears as it was when its batch was read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from subbot.domain.clock import Clock, ensure_utc
from subbot.services.dashboard_common import now_of
from subbot.services.dashboard_lists import payment_filter, payment_rows, payment_select
from subbot.services.dashboard_members import USER_COLUMNS, describe, member_filter
from subbot.store.db import Database
from subbot.store.models import Payment, User

BATCH = 1000
#: A spreadsheet runs a cell starting with one of these as a formula (CSV injection); OWASP's list.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

MEMBER_HEADER = (
    "user_id",
    "username",
    "first_name",
    "last_name",
    "status",
    "plan",
    "ends_at",
    "whitelisted",
    "first_seen",
)
PAYMENT_HEADER = (
    "payment_id",
    "created_at",
    "user_id",
    "username",
    "provider",
    "provider_payment_id",
    "order_id",
    "plan",
    "amount",
    "currency",
    "refunded",
    "status",
    "refunded_at",
)


def cell(value: Any) -> str:
    """One CSV cell as text: times in ISO 8601 UTC, booleans yes/no, formulas neutralised with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def records(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text (RFC 4180: CRLF, quotes where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def members_csv(
    db: Database,
    query: str = "",
    *,
    status: str | None = None,
    plan_id: str | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[str]:
    """The members the Members page finds for the same search and filters, with status, plan and end, by
    user id; header first. Without a search or filter: every member.

    A plain function returning the stream, so bad filters raise ``QueryError`` here, before any response.
    """
    now = now_of(clock)
    _kind, where = member_filter(query, status, plan_id, now, db.dialect)
    return _members(db, where, now)


def _members(db: Database, where: Any, now: datetime) -> AsyncIterator[str]:
    async def batch(after: int | None) -> list[Any]:
        async with db.sessions() as session:
            stmt = select(*USER_COLUMNS).where(where).order_by(User.id).limit(BATCH)
            if after is not None:
                stmt = stmt.where(User.id > after)
            return list(await describe(session, (await session.execute(stmt)).all(), now))

    return _keyset(
        MEMBER_HEADER,
        batch,
        lambda m: int(m.user_id),
        lambda m: (
            m.user_id,
            m.username,
            m.first_name,
            m.last_name,
            m.status.value,
            m.plan,
            m.ends_at,
            m.whitelisted,
            m.created_at,
        ),
    )


def payments_csv(
    db: Database,
    *,
    status: str | None = None,
    provider: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[str]:
    """Payments matching the Payments page's filters, oldest first; amounts in major units. Header first.

    A plain function returning the stream, so bad filters raise ``QueryError`` here, before any response.
    """
    return _payments(db, payment_filter(status, provider, since, until))


def _payments(db: Database, where: Any) -> AsyncIterator[str]:
    async def batch(after: int | None) -> list[Any]:
        async with db.sessions() as session:
            stmt = payment_select(where).where(Payment.id > (after or 0)).order_by(Payment.id).limit(BATCH)
            return list(payment_rows((await session.execute(stmt)).all()))

    return _keyset(
        PAYMENT_HEADER,
        batch,
        lambda p: int(p.id),
        lambda p: (
            p.id,
            p.created_at,
            p.user_id,
            p.username,
            p.provider,
            p.provider_payment_id,
            p.order_id,
            p.plan,
            p.amount.to_major(),
            p.amount.currency,
            p.refunded.to_major(),
            p.status,
            p.refunded_at,
        ),
    )


async def _keyset(
    header: Sequence[str],
    batch: Callable[[int | None], Awaitable[list[Any]]],
    key: Callable[[Any], int],
    cells: Callable[[Any], Sequence[Any]],
) -> AsyncIterator[str]:
    """The header, then batches of up to ``BATCH`` rows after the last one's key, each read by ``batch``."""
    yield records([header])
    after: int | None = None
    while True:
        rows = await batch(after)
        if not rows:
            return
        after = key(rows[-1])
        yield records(cells(row) for row in rows)
        if len(rows) < BATCH:
            return
