"""The dashboard's Broadcasts page: the list, newest first, and sending a previewed draft exactly once.

Sending goes through :mod:`subbot.services.broadcasts` (``create`` then ``queue_some``, as the bot's
/broadcast does). The preview carries a random draft token; sending claims it in the ``flags`` table first,
so a double click, a resubmitted form or a second tab cannot send the same draft twice.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from subbot.services import broadcasts
from subbot.services.broadcasts import BroadcastError, Progress
from subbot.services.context import ServiceContext
from subbot.store.models import Broadcast, Flag
from subbot.store.sql import insert_ignore

PER_PAGE = 20
EXCERPT = 80
DRAFT_PREFIX = "broadcast_draft:"
DRAFT_TTL = timedelta(days=1)  # a claimed token is remembered this long (a preview older than that is stale)
ACTIVE = ("queuing", "sending")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")


class AlreadySent(BroadcastError):
    """The draft was sent before (``broadcast_id``) or is being sent right now (None)."""

    def __init__(self, broadcast_id: int | None) -> None:
        what = f"as broadcast #{broadcast_id}" if broadcast_id else "a moment ago"
        super().__init__(f"This preview was already sent {what}; it is not sent twice.")
        self.broadcast_id = broadcast_id


@dataclass(frozen=True)
class BroadcastRow:
    id: int
    status: str
    audience: str
    excerpt: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    total: int
    progress: Progress | None  # counted for broadcasts still running only (a count over their jobs)


@dataclass(frozen=True)
class BroadcastPage:
    rows: list[BroadcastRow]
    total: int
    page: int
    has_next: bool


def excerpt(text: str, limit: int = EXCERPT) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


async def list_broadcasts(ctx: ServiceContext, page: int = 1, per_page: int = PER_PAGE) -> BroadcastPage:
    """One page of broadcasts, newest first; live progress for the ones still queuing or sending."""
    page = min(max(page, 1), 100_000)
    async with ctx.db.sessions() as session:
        total = int(await session.scalar(select(func.count()).select_from(Broadcast)) or 0)
        found = list(
            (
                await session.scalars(
                    select(Broadcast)
                    .order_by(Broadcast.id.desc())
                    .offset((page - 1) * per_page)
                    .limit(per_page + 1)
                )
            ).all()
        )
    rows = []
    for b in found[:per_page]:
        progress = await broadcasts.progress_of(ctx, b.id) if b.status in ACTIVE else None
        rows.append(
            BroadcastRow(
                id=b.id, status=b.status, audience=broadcasts.describe_segment(b.segment, b.segment_days),
                excerpt=excerpt(b.text), created_by=b.created_by, created_at=b.created_at,
                finished_at=b.finished_at, total=b.total, progress=progress,
            )
        )  # fmt: skip
    return BroadcastPage(rows, total, page, len(found) > per_page)


def new_draft_token() -> str:
    return secrets.token_urlsafe(16)


async def _claim(ctx: ServiceContext, token: str) -> None:
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        await session.execute(
            delete(Flag).where(Flag.key.like(f"{DRAFT_PREFIX}%"), Flag.updated_at < now - DRAFT_TTL)
        )
        values = {"key": DRAFT_PREFIX + token, "value": {"broadcast_id": None}, "updated_at": now}
        if await insert_ignore(session, Flag.__table__, values, ["key"]):  # type: ignore[arg-type]
            return
        flag = await session.get(Flag, DRAFT_PREFIX + token)
        sent = flag.value.get("broadcast_id") if flag is not None else None
    raise AlreadySent(int(sent) if isinstance(sent, int) else None)


async def _record(ctx: ServiceContext, token: str, broadcast_id: int | None) -> None:
    async with ctx.transaction() as session:
        flag = await session.get(Flag, DRAFT_PREFIX + token)
        if flag is None:
            return
        if broadcast_id is None:
            await session.delete(flag)
        else:
            flag.value = {"broadcast_id": broadcast_id}


async def send_once(
    ctx: ServiceContext, token: str, text: str, segment: str, days: int | None, actor: str
) -> Broadcast:
    """Create the broadcast of a previewed draft (audited) and queue its first recipients; once per token."""
    if not _TOKEN.fullmatch(token):
        raise BroadcastError("This preview is not valid any more: preview the broadcast again.")
    await _claim(ctx, token)
    try:
        created = await broadcasts.create(ctx, text, segment, days, actor)
    except Exception:  # nothing was stored: release the token so the draft can be sent after all
        await _record(ctx, token, None)
        raise
    await _record(ctx, token, created.id)
    await broadcasts.queue_some(ctx)  # small broadcasts start at once; the sweep queues the rest
    return created
