"""The sandbox world: users, bots, chats, members, invite links, messages, payments."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .core import bad_request, forbidden
from .models import (
    IN_CHAT,
    BotAccount,
    CallbackRecord,
    Charge,
    ChatLog,
    Checkout,
    Group,
    InviteLink,
    Invoice,
    Member,
    StoredMessage,
    User,
    member_api,
    new_secret,
)
from .spec import Spec


class World:
    """All mutable sandbox state. Only touched from the event loop thread."""

    def __init__(self, now: Callable[[], float], spec: Spec) -> None:
        self._now = now
        self.clock_offset = 0.0
        self.spec = spec
        self.users: dict[int, User] = {}
        self.bots: dict[int, BotAccount] = {}
        self.tokens: dict[str, BotAccount] = {}
        self.groups: dict[int, Group] = {}
        self.privates: dict[tuple[int, int], ChatLog] = {}
        self.invoice_links: dict[str, Invoice] = {}
        self.invoices: dict[tuple[int, int, int], Invoice] = {}  # (bot, chat, message) -> invoice
        self.checkouts: dict[str, Checkout] = {}
        self.charges: dict[str, Charge] = {}
        self.refunds: list[dict[str, Any]] = []
        self.callbacks: dict[str, CallbackRecord] = {}
        self.violations: list[str] = []
        self.user_ids = itertools.count(100_000_001)
        self.group_ids = itertools.count(1_000_000_001)
        self.bot_ids = itertools.count(7_000_000_001)
        self.http_client: Callable[[], httpx.AsyncClient] = _no_client
        self.webhook_reply: Callable[[BotAccount, dict[str, Any]], Awaitable[None]] = _no_reply

    def now(self) -> float:
        return self._now() + self.clock_offset

    # ----------------------------------------------------------------- people
    def person(self, uid: int) -> User | None:
        if uid in self.users:
            return self.users[uid]
        bot = self.bots.get(uid)
        return bot.user if bot else None

    def require_user(self, uid: int) -> User:
        user = self.person(uid)
        if user is None:
            raise ValueError(f"unknown user {uid}")
        return user

    def bot_for(self, token: str | None) -> BotAccount:
        if token is None:
            if not self.bots:
                raise ValueError("no bot registered: call add_bot() first")
            return next(iter(self.bots.values()))
        bot = self.tokens.get(token)
        if bot is None:
            raise ValueError("unknown bot token")
        return bot

    # ------------------------------------------------------------------ chats
    def private_log(self, bot_id: int, user_id: int) -> ChatLog:
        return self.privates.setdefault((bot_id, user_id), ChatLog())

    def private_chat(self, user: User) -> dict[str, Any]:
        out: dict[str, Any] = {"id": user.id, "type": "private", "first_name": user.first_name}
        if user.last_name:
            out["last_name"] = user.last_name
        if user.username:
            out["username"] = user.username
        return out

    def group_chat(self, group: Group) -> dict[str, Any]:
        out: dict[str, Any] = {"id": group.id, "type": group.type, "title": group.title}
        if group.username:
            out["username"] = group.username
        return out

    def resolve_group(self, chat_id: int | str) -> Group:
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for group in self.groups.values():
                if group.username and group.username.lower() == name:
                    return group
            raise bad_request("chat not found")
        found = self.groups.get(chat_id)
        if found is None:
            raise bad_request("chat not found")
        return found

    def bot_group(self, bot: BotAccount, chat_id: int | str) -> Group:
        """A group the bot is in (else Telegram's 'chat not found' / 'not a member')."""
        group = self.resolve_group(chat_id)
        if self.member(group, bot.id).status not in IN_CHAT:
            kind = "channel" if group.type == "channel" else f"{group.type} chat"
            raise forbidden(f"bot is not a member of the {kind}")
        return group

    def require_right(self, group: Group, bot: BotAccount, right: str, text: str) -> None:
        m = self.member(group, bot.id)
        if m.status == "creator" or (m.status == "administrator" and m.rights.get(right)):
            return
        raise bad_request(text)

    # ---------------------------------------------------------------- members
    def member(self, group: Group, uid: int) -> Member:
        m = group.members.get(uid)
        if m is None:
            return Member("left")
        if m.status == "kicked" and m.until_date and self.now() >= m.until_date:
            m.status, m.until_date = "left", 0
        if m.status == "restricted" and m.until_date and self.now() >= m.until_date:
            m.status, m.until_date = "member", 0
        return m

    def member_dict(self, group: Group, uid: int) -> dict[str, Any]:
        user = self.require_user(uid)
        return member_api(self.member(group, uid), user)

    def set_status(self, group: Group, uid: int, status: str, until_date: int = 0) -> tuple[Member, Member]:
        old = self.member(group, uid)
        old_copy = Member(old.status, old.until_date, dict(old.rights))
        rights = old.rights if status in ("administrator", "restricted") else {}
        new = Member(status, until_date, dict(rights))
        group.members[uid] = new
        return old_copy, new

    def member_update(
        self, group: Group, uid: int, actor_id: int, old: Member, new: Member, link: InviteLink | None = None
    ) -> dict[str, Any]:
        user = self.require_user(uid)
        out: dict[str, Any] = {
            "chat": self.group_chat(group),
            "from": self.require_user(actor_id).to_api(),
            "date": int(self.now()),
            "old_chat_member": member_api(old, user),
            "new_chat_member": member_api(new, user),
        }
        if link is not None:
            out["invite_link"] = self.link_dict(link)
        return out

    # ------------------------------------------------------------------ links
    def new_link_url(self) -> str:
        return "https://t.me/+" + new_secret(12)[:16]

    def find_link(self, url: str) -> InviteLink | None:
        for group in self.groups.values():
            if url in group.links:
                return group.links[url]
        return None

    def link_dict(self, link: InviteLink) -> dict[str, Any]:
        out: dict[str, Any] = {
            "invite_link": link.link,
            "creator": self.require_user(link.creator_id).to_api(),
            "creates_join_request": link.creates_join_request,
            "is_primary": link.is_primary,
            "is_revoked": link.revoked,
        }
        if link.name:
            out["name"] = link.name
        if link.expire_date:
            out["expire_date"] = link.expire_date
        if link.member_limit:
            out["member_limit"] = link.member_limit
        if link.creates_join_request:
            out["pending_join_request_count"] = len(link.pending)
        return out

    # ---------------------------------------------------------------- updates
    def emit(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        problem = self.spec.check_value({"update_id": 1, kind: payload}, "Update", "update")
        if problem is not None:
            self.violations.append(f"sandbox bug: invalid {kind} update: {problem}")
        return bot.hub.push(kind, payload)

    def emit_group(self, group: Group, kind: str, payload: dict[str, Any], admins_only: bool) -> None:
        for bot in self.bots.values():
            status = self.member(group, bot.id).status
            ok = status in ("administrator", "creator") if admins_only else status in IN_CHAT
            if ok:
                self.emit(bot, kind, payload)

    def add_message(
        self, log: ChatLog, sender_id: int, chat: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {"message_id": log.next_id, "date": int(self.now()), "chat": chat}
        sender = self.person(sender_id)
        if sender is not None:
            msg["from"] = sender.to_api()
        msg.update({k: v for k, v in fields.items() if v is not None})
        log.messages[log.next_id] = StoredMessage(msg, sender_id)
        log.next_id += 1
        return msg

    def check_private_target(self, bot: BotAccount, user_id: int) -> User:
        """Can ``bot`` write to ``user_id``'s private chat? Telegram's 403s otherwise."""
        user = self.users.get(user_id)
        if user is None:
            if user_id in self.bots:
                raise forbidden("bot can't send messages to bots")
            raise bad_request("chat not found")
        if user_id in bot.blocked_by:
            raise forbidden("bot was blocked by the user")
        if user_id not in bot.started_by and bot.reachable_until.get(user_id, 0) < self.now():
            raise forbidden("bot can't initiate conversation with a user")
        return user

    def change_membership(
        self,
        group: Group,
        uid: int,
        actor_id: int,
        status: str,
        until_date: int = 0,
        link: InviteLink | None = None,
        rights: dict[str, bool] | None = None,
    ) -> None:
        """Set a member's status and emit what Telegram would: chat_member (admin bots),
        my_chat_member (the bot itself) and a join/leave service message."""
        old, new = self.set_status(group, uid, status, until_date)
        if rights is not None:
            new.rights = dict(rights)
        if old.status == new.status and old.rights == new.rights and old.until_date == new.until_date:
            return
        update = self.member_update(group, uid, actor_id, old, new, link)
        for bot in list(self.bots.values()):
            if bot.id == uid:
                self.emit(bot, "my_chat_member", update)
            elif self.member(group, bot.id).status in ("administrator", "creator"):
                self.emit(bot, "chat_member", update)
        was_in, is_in = old.status in IN_CHAT, new.status in IN_CHAT
        if was_in == is_in:
            return
        user = self.require_user(uid).to_api()
        service = {"new_chat_members": [user]} if is_in else {"left_chat_member": user}
        msg = self.add_message(group.log, actor_id, self.group_chat(group), **service)
        self.emit_group(group, "message", msg, admins_only=False)


async def _no_reply(bot: BotAccount, body: dict[str, Any]) -> None:
    return None


def _no_client() -> httpx.AsyncClient:
    raise RuntimeError("webhook delivery needs the sandbox server")
