"""Member search for the dashboard: by id, @username prefix or name, filtered by status and plan, paged.

Built for 100,000 members within 200 ms on SQLite and PostgreSQL (``python -m bench dashboard``):
the status filters are non-correlated ``IN`` sub-selects (each built once per query, then probed),
an ``@username`` prefix is an index range on ``lower(username)``, and a name search is one scan
(two on SQLite: the page, then a count that stops at COUNT_CAP). The indexes it counts on are listed
in docs/performance.md ("Dashboard").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from subbot.domain.clock import Clock, ensure_utc
from subbot.services.dashboard_common import (
    MemberStatus,
    Paging,
    clean_text,
    like_escape,
    now_of,
    page_count,
    paging,
    parse_status,
)
from subbot.store.db import Database
from subbot.store.models import Subscription, User
from subbot.store.subscriptions import active_at

_USERNAME_PREFIX = re.compile(r"^[a-z0-9_]{1,32}$")  # Telegram usernames: letters, digits, underscore
MAX_ID = 2**63 - 1

#: Counting stops here: past it the page says "10,000+" instead of scanning every match on each keystroke.
COUNT_CAP = 10_000

#: Newest members first; the id breaks ties so pages never overlap.
ORDER = (User.created_at.desc(), User.id.desc())


@dataclass(frozen=True)
class MemberRow:
    user_id: int
    username: str | None
    first_name: str
    last_name: str | None
    status: MemberStatus
    plan: str | None  # plan code of the subscription behind the status (None: never paid, whitelist only)
    ends_at: datetime | None  # when that access ends or ended; None for lifetime and never
    whitelisted: bool
    created_at: datetime

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class MemberPage:
    rows: list[MemberRow]
    total: int  # matching members; a text search on SQLite stops counting at COUNT_CAP (total_exact False)
    total_exact: bool
    page: int
    per_page: int
    kind: str  # how the query was read: all | id | username | name | word (username prefix or name)

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages or (not self.total_exact and len(self.rows) == self.per_page)


@dataclass(frozen=True)
class _Sub:
    plan_code: str
    status: str
    ends_at: datetime | None
    updated_at: datetime


def _username_prefix(prefix: str, dialect: str) -> Any:
    """Case-insensitive prefix on ``lower(username)``, written the way each backend can use an index for."""
    column = func.lower(User.username)
    if dialect == "sqlite":
        # SQLite's LIKE optimisation ignores expression indexes; a BINARY range is an exact prefix test.
        return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    return column.like(like_escape(prefix) + "%", escape="\\")  # index: lower(username) text_pattern_ops


def _name_contains(text: str, dialect: str) -> Any:
    full = User.first_name + literal(" ") + func.coalesce(User.last_name, "")
    if dialect == "sqlite":
        # SQLite's LIKE ignores case for ASCII only: for other scripts, also try the common spellings.
        spellings = (text,) if text.isascii() else (text, text.lower(), text.title(), text.upper())
        variants = dict.fromkeys(spellings)
        return or_(*(full.like(f"%{like_escape(v)}%", escape="\\") for v in variants))
    return full.ilike(f"%{like_escape(text)}%", escape="\\")


def _text_filter(query: str, dialect: str) -> tuple[str, Any]:
    q = clean_text(query)
    if not q or q == "@":
        return "all", true()
    if q.isascii() and q.isdigit():
        number = int(q)
        return "id", (User.id == number) if number <= MAX_ID else false()
    if q.startswith("@"):
        name = q[1:].lower()
        return "username", _username_prefix(name, dialect) if _USERNAME_PREFIX.match(name) else false()
    if _USERNAME_PREFIX.match(q.lower()):
        return "word", or_(_username_prefix(q.lower(), dialect), _name_contains(q, dialect))
    return "name", _name_contains(q, dialect)


def unindexed(column: Any) -> Any:
    """SQLite's unary ``+column``: the same value, but the planner will not use an index for it."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def status_filter(status: MemberStatus | None, plan: str | None, now: datetime, dialect: str) -> Any:
    """SQL for "the member has this status (and a subscription to this plan)".

    With ``plan``: a current subscription to it for lifetime/active, any subscription to it otherwise.
    """
    s = Subscription
    whitelisted = User.is_whitelisted == true()
    # On SQLite, "id + 0" keeps the planner from driving the query from a large IN list and then
    # sorting every row it found; it walks the users in page order and probes the list instead.
    uid = User.id + 0 if dialect == "sqlite" else User.id
    lifetime_ids = select(s.user_id).where(s.status == "active", s.ends_at.is_(None))
    conditions: list[Any] = []
    if status is MemberStatus.LIFETIME:
        conditions.append(or_(whitelisted, uid.in_(lifetime_ids)))
    elif status is MemberStatus.ACTIVE:
        dated_ids = select(s.user_id).where(s.status == "active", s.ends_at > now)
        conditions += [~whitelisted, uid.not_in(lifetime_ids), uid.in_(dated_ids)]
    elif status is MemberStatus.EXPIRED:
        conditions += [
            ~whitelisted,
            uid.not_in(select(s.user_id).where(active_at(now))),
            uid.in_(select(s.user_id)),
        ]
    elif status is MemberStatus.NEVER:
        conditions += [~whitelisted, uid.not_in(select(s.user_id))]
    if plan is not None:
        if status is MemberStatus.NEVER:
            return false()
        of_plan = select(s.user_id).where(s.plan_code == plan[:32])
        if status in (MemberStatus.LIFETIME, MemberStatus.ACTIVE):
            # One pass over subscriptions beats SQLite's pick, the status index and a row lookup per hit.
            state = unindexed(s.status) if dialect == "sqlite" else s.status
            of_plan = of_plan.where(state == "active", or_(s.ends_at.is_(None), s.ends_at > now))
        conditions.append(uid.in_(of_plan))
    return and_(true(), *conditions)


def classify(
    now: datetime, whitelisted: bool, subs: Iterable[_Sub]
) -> tuple[MemberStatus, str | None, datetime | None]:
    """(status, plan, end) of one member: the same rules as ``status_filter``, in Python."""
    subs = list(subs)
    current = [x for x in subs if x.status == "active" and (x.ends_at is None or x.ends_at > now)]
    lifetime = [x for x in current if x.ends_at is None]
    dated = sorted((x for x in current if x.ends_at is not None), key=lambda x: x.ends_at or now)
    if lifetime:
        return MemberStatus.LIFETIME, lifetime[0].plan_code, None
    if whitelisted:
        return MemberStatus.LIFETIME, dated[-1].plan_code if dated else None, None
    if dated:
        return MemberStatus.ACTIVE, dated[-1].plan_code, dated[-1].ends_at
    if subs:
        last = max(subs, key=lambda x: _ended(x))
        return MemberStatus.EXPIRED, last.plan_code, _ended(last)
    return MemberStatus.NEVER, None, None


def _ended(sub: _Sub) -> datetime:
    """When access from an ended subscription stopped: the revoke if it came before the end."""
    if sub.status == "revoked" and (sub.ends_at is None or sub.updated_at < sub.ends_at):
        return sub.updated_at
    return sub.ends_at or sub.updated_at


async def describe(session: AsyncSession, users: Sequence[Any], now: datetime) -> list[MemberRow]:
    """Member rows (status, plan, end) for user rows that have id, username, names, flags, created_at."""
    ids = [u.id for u in users]
    by_user: dict[int, list[_Sub]] = {i: [] for i in ids}
    if ids:
        s = Subscription
        stmt = select(s.user_id, s.plan_code, s.status, s.ends_at, s.updated_at).where(s.user_id.in_(ids))
        for user_id, plan_code, status, ends_at, updated_at in await session.execute(stmt):
            by_user[user_id].append(_Sub(plan_code, status, ends_at, updated_at))
    rows = []
    for u in users:
        status, plan, ends = classify(now, bool(u.is_whitelisted), by_user[u.id])
        rows.append(
            MemberRow(
                u.id,
                u.username,
                u.first_name or "",
                u.last_name,
                status,
                plan,
                ends,
                bool(u.is_whitelisted),
                ensure_utc(u.created_at),
            )
        )
    return rows


USER_COLUMNS = (
    User.id,
    User.username,
    User.first_name,
    User.last_name,
    User.is_whitelisted,
    User.created_at,
)


def member_filter(
    query: str, status: str | None, plan_id: str | None, now: datetime, dialect: str
) -> tuple[str, Any]:
    """The search's kind and its WHERE clause on ``users``; an unknown ``status`` raises ``QueryError``."""
    member_status = parse_status(status)
    kind, text = _text_filter(query, dialect)
    return kind, and_(text, status_filter(member_status, plan_id or None, now, dialect))


async def search_members(
    db: Database,
    query: str = "",
    *,
    status: str | None = None,
    plan_id: str | None = None,
    page: int = 1,
    per_page: int = 50,
    clock: Clock | None = None,
) -> MemberPage:
    """One page of members matching ``query`` (see the module docstring), newest first.

    ``query``: digits → that user id; ``@name`` → username prefix; a single word of username characters
    → username prefix or name contains; anything else → first/last name contains. Case-insensitive;
    ``%`` and ``_`` match themselves. ``plan_id`` is a plan code (plans are keyed by code). Unknown
    ``status`` raises ``QueryError``; page and per_page are clamped.
    """
    paged = paging(page, per_page)
    now = now_of(clock)
    kind, where = member_filter(query, status, plan_id, now, db.dialect)
    async with db.sessions() as session:
        if db.dialect == "postgresql" and kind in ("name", "word"):
            users, total, exact = await _filter_then_page(session, where, paged)
        else:
            stmt = (
                select(*USER_COLUMNS).where(where).order_by(*ORDER).offset(paged.offset).limit(paged.per_page)
            )
            users = list((await session.execute(stmt)).all())
            total, exact = await _count(session, where, kind)
        rows = await describe(session, users, now)
    if not exact:  # the count stopped early: a page past the cap still knows there is at least this much
        total = max(total, paged.offset + len(rows))
    return MemberPage(rows, total, exact, paged.page, paged.per_page, kind)


async def _filter_then_page(session: AsyncSession, where: Any, paged: Paging) -> tuple[list[Any], int, bool]:
    """PostgreSQL, "contains" searches: every match first (one scan), then its page and its exact count.

    The planner cannot guess how many names contain a string; trusting a guess, it walks the whole
    creation-order index for a rare one (random reads: several times the cost of one plain scan).
    """
    matches = select(*USER_COLUMNS).where(where).cte("matches").prefix_with("MATERIALIZED")
    total = select(func.count()).select_from(matches).scalar_subquery().label("total")
    stmt = (
        select(matches, total)
        .order_by(matches.c.created_at.desc(), matches.c.id.desc())
        .offset(paged.offset)
        .limit(paged.per_page)
    )
    users = list((await session.execute(stmt)).all())
    if users or paged.offset == 0:
        return users, int(users[0].total) if users else 0, True
    # A page past the end has no row to carry the count.
    return users, int(await session.scalar(select(func.count()).select_from(User).where(where)) or 0), True


async def _count(session: AsyncSession, where: Any, kind: str) -> tuple[int, bool]:
    """Exact count, except text searches stop at COUNT_CAP (a prefix of one letter can match most)."""
    if kind in ("all", "id"):
        return int(await session.scalar(select(func.count()).select_from(User).where(where)) or 0), True
    capped = select(User.id).where(where).limit(COUNT_CAP + 1).subquery()
    n = int(await session.scalar(select(func.count()).select_from(capped)) or 0)
    return min(n, COUNT_CAP), n <= COUNT_CAP
