"""Access to the private chats: personal invite links, joins, anti-sharing, join requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from subbot.domain.subscriptions import days_left
from subbot.services.context import ServiceContext
from subbot.store import memberships, outbox, subscriptions, users
from subbot.store.models import AuditEntry, InviteLink, Membership, Order, Subscription
from subbot.store.subscriptions import active_at
from subbot.store.types import UTCDateTime
from subbot.telegram.gateway import TelegramGateway

log = logging.getLogger(__name__)

IN_CHAT = frozenset({"creator", "administrator", "member", "restricted"})
OUT_OF_CHAT = frozenset({"left", "kicked"})


@dataclass(frozen=True)
class JoinOutcome:
    action: str  # joined | anti_sharing | recorded | left


async def grant_access(ctx: ServiceContext, gateway: TelegramGateway, payload: dict[str, Any]) -> None:
    """Outbox job: a personal link per chat the member may enter and is not in, sent as buttons.

    payload: user_id; order_id (None for grants and resends); plan (None = every configured chat);
    reason: payment (default) | grant | resend.
    """
    user_id = int(payload["user_id"])
    order_id = str(payload["order_id"]) if payload.get("order_id") else None
    plan = ctx.plan(str(payload["plan"])) if payload.get("plan") else None
    if payload.get("plan") and plan is None:
        raise ValueError(f"plan {payload['plan']!r} is no longer configured")
    chats = plan.chat_ids if plan else ctx.all_chat_ids()
    now = ctx.clock.now()
    # Everything the job needs to know, read on one connection before the Bot API calls.
    needed: list[tuple[int, int, str | None]] = []  # (button number, chat, a still usable link)
    params: dict[str, Any] = {"p_user": user_id, "p_order": order_id, "p_now": now}
    async with ctx.db.engine.connect() as conn:
        for index, chat_id in enumerate(chats, start=1):
            params["p_chat"] = chat_id
            if await conn.scalar(_STATE, params) == "joined":
                continue
            live = await conn.scalar(_LIVE_LINK if order_id else _LIVE_MEMBER_LINK, params)
            needed.append((index, chat_id, live))
        ends_at = (await conn.execute(_ACTIVE_END, params)).first()
    buttons: list[list[InlineKeyboardButton]] = []
    for index, chat_id, reusable in needed:
        url = reusable or await _new_link(ctx, gateway, user_id, chat_id, order_id)
        label = "Join the group" if len(chats) == 1 else f"Join chat {index}"
        buttons.append([InlineKeyboardButton(text=label, url=url)])
    until = _until_text(ctx, ends_at[0] if ends_at else None)
    title = plan.title if plan else "your"
    reason = payload.get("reason", "payment")
    if reason == "payment":
        text = f"✅ Payment received, thank you! Your {title} access is active {until}."
    elif buttons:
        text = f"🔑 Here is your personal invite. Your access is active {until}."
    else:
        text = f"Your access is active {until}. You are already in the group."
    if buttons:
        minutes = int(ctx.policy.invite_ttl.total_seconds() // 60)
        text += f"\n\nYour personal invite link is for you only and expires in {minutes} minutes."
    markup = InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None
    await gateway.send_message(user_id, text, reply_markup=markup)


# Built once with bind parameters (every paid order runs them): the membership's state; a link already
# made for this order (or member grant) and chat that can still be used, which a retried job reuses; the
# end of the member's latest active subscription (ordered as ``subscriptions.active_for_user``).
_NOW = bindparam("p_now", type_=UTCDateTime())
_STATE = select(Membership.state).where(
    Membership.user_id == bindparam("p_user"), Membership.chat_id == bindparam("p_chat")
)
_USABLE = (
    InviteLink.user_id == bindparam("p_user"),
    InviteLink.chat_id == bindparam("p_chat"),
    InviteLink.revoked_at.is_(None),
    InviteLink.used_at.is_(None),
    InviteLink.expires_at > _NOW,
)
_LIVE_LINK = select(InviteLink.link).where(InviteLink.order_id == bindparam("p_order"), *_USABLE).limit(1)
_LIVE_MEMBER_LINK = select(InviteLink.link).where(InviteLink.order_id.is_(None), *_USABLE).limit(1)
_ACTIVE_END = (
    select(Subscription.ends_at)
    .where(
        Subscription.user_id == bindparam("p_user"),
        active_at(_NOW),
    )
    .order_by(Subscription.ends_at.desc())
    .limit(1)
)


async def _new_link(
    ctx: ServiceContext, gateway: TelegramGateway, user_id: int, chat_id: int, order_id: str | None
) -> str:
    now = ctx.clock.now()
    expires = now + ctx.policy.invite_ttl
    name = (f"order {order_id}" if order_id else f"member {user_id}")[:32]
    by_request = chat_id in ctx.policy.join_request_chats
    link = await gateway.create_invite_link(
        chat_id, name=name, expire_date=expires, single_use=not by_request, join_request=by_request
    )
    async with ctx.transaction() as session:
        row = {
            "chat_id": chat_id,
            "user_id": user_id,
            "order_id": order_id,
            "link": link.invite_link,
            "name": name,
            "expires_at": expires,
            "created_at": now,
        }
        await session.execute(_NEW_LINK, row)
        # memberships.set_state(…, "invited", "invite") as one upsert: the source is kept when the row exists
        invited = {
            "user_id": user_id,
            "chat_id": chat_id,
            "state": "invited",
            "source": "invite",
            "updated_at": now,
        }
        await session.execute(_invited(session.get_bind().dialect.name), invited)
    return link.invite_link


_TABLES: Any = (InviteLink.__table__, Membership.__table__)
_NEW_LINK = insert(_TABLES[0])  # Core: nothing is read back
_INVITED: dict[str, Any] = {}


def _invited(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (user_id, chat_id) DO UPDATE SET state, updated_at``, built once per dialect."""
    stmt = _INVITED.get(dialect)
    if stmt is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        ins = builder(_TABLES[1])
        stmt = _INVITED[dialect] = ins.on_conflict_do_update(
            index_elements=["user_id", "chat_id"],
            set_={"state": ins.excluded.state, "updated_at": ins.excluded.updated_at},
        )
    return stmt


def _until_text(ctx: ServiceContext, ends_at: Any) -> str:
    if ends_at is None:
        return "for life"
    left = days_left(ctx.clock.now(), ends_at)
    return f"until {ends_at:%Y-%m-%d %H:%M} UTC ({left} days)"


async def on_chat_member(
    ctx: ServiceContext,
    chat_id: int,
    user_id: int,
    old: str,
    new: str,
    link: str | None,
    *,
    first_name: str = "",
    username: str | None = None,
    by_us: bool = False,
) -> JoinOutcome:
    """A join, leave or removal seen in a chat_member update; ``by_us``: this bot made the change."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        # People can be in the group without ever having written to the bot.
        await users.upsert(
            session, user_id, now, first_name=first_name, username=username, wrote_to_bot=False
        )
        if old == "kicked" and new == "left":
            return JoinOutcome("recorded")  # the second half of a kick (ban lifted): still removed
        if by_us and new in OUT_OF_CHAT:
            # Our own removal's ban: its producer already wrote ``removed``. Recording it again would make
            # the row look changed since the kick job was queued, so the retry of a removal whose unban
            # failed was skipped by the job's guard, and the member stayed banned for good.
            return JoinOutcome("recorded")
        if new in OUT_OF_CHAT:
            await memberships.set_state(
                session, user_id, chat_id, "left" if new == "left" else "removed", "telegram", now
            )
            return JoinOutcome("left")
        if new not in IN_CHAT or old in IN_CHAT:
            return JoinOutcome("recorded")
        row = await memberships.link_by_url(session, link) if link else None
        if row is None:
            # Joined some other way (added by an admin, a public link): record it, never remove on a guess.
            await memberships.set_state(session, user_id, chat_id, "joined", "manual", now)
            return JoinOutcome("recorded")
        key = f"revoke:{row.id}"
        await outbox.enqueue(session, "revoke_link", key, {"chat_id": chat_id, "link": row.link}, now)
        if row.user_id == user_id:
            row.used_at, row.used_by = row.used_at or now, user_id
            await memberships.set_state(session, user_id, chat_id, "joined", "invite", now)
            return JoinOutcome("joined")
        if await subscriptions.has_access(session, user_id, chat_id, now):
            await memberships.set_state(session, user_id, chat_id, "joined", "invite", now)
            return JoinOutcome("joined")
        # Someone used another member's personal link: remove them, and tell the owner a new link is coming.
        row.used_at, row.used_by = row.used_at or now, user_id
        await memberships.set_state(session, user_id, chat_id, "removed", "anti_sharing", now)
        await outbox.enqueue(
            session, "kick", f"kick:share:{row.id}:{user_id}", {"chat_id": chat_id, "user_id": user_id}, now
        )
        if row.order_id is not None:
            await outbox.enqueue(
                session,
                "grant_access",
                f"regrant:{row.id}",
                {
                    "user_id": row.user_id,
                    "order_id": row.order_id,
                    "plan": await _order_plan(session, row.order_id),
                },
                now,
            )
        session.add(
            AuditEntry(
                at=now,
                actor="system",
                action="anti_sharing_kick",
                target_user_id=user_id,
                details={"chat_id": chat_id, "link_owner": row.user_id, "link_id": row.id},
            )
        )
        log.warning("invite link %s of user %s used by %s: removing", row.id, row.user_id, user_id)
        return JoinOutcome("anti_sharing")


async def _order_plan(session: Any, order_id: str) -> str:
    order = await session.get(Order, order_id)
    return str(order.plan_code) if order is not None else ""


async def on_join_request(ctx: ServiceContext, chat_id: int, user_id: int, user_chat_id: int) -> bool:
    """Approve requests from members with access, decline the others with a message; True if approved."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        allowed = await subscriptions.has_access(session, user_id, chat_id, now)
        stamp = int(now.timestamp())
        kind = "approve_join" if allowed else "decline_join"
        payload = {"chat_id": chat_id, "user_id": user_id, "user_chat_id": user_chat_id}
        await outbox.enqueue(session, kind, f"joinreq:{chat_id}:{user_id}:{stamp}", payload, now)
    return allowed
