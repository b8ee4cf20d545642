"""Plain records of the sandbox world (users, bots, chats, links, payments)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from .updates import UpdateHub

ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
OPTIONAL_ADMIN_RIGHTS = (
    "can_post_messages",
    "can_edit_messages",
    "can_pin_messages",
    "can_manage_topics",
    "can_send_welcome_messages",
)
RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
IN_CHAT = frozenset({"creator", "administrator", "member", "restricted"})
STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@dataclass
class BotAccount:
    token: str
    user: User
    hub: UpdateHub
    started_by: set[int] = field(default_factory=set)
    blocked_by: set[int] = field(default_factory=set)
    reachable_until: dict[int, float] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    menu_buttons: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.user.id


@dataclass
class Member:
    status: str
    until_date: int = 0
    rights: dict[str, bool] = field(default_factory=dict)


@dataclass
class InviteLink:
    link: str
    chat_id: int
    creator_id: int
    name: str | None = None
    expire_date: int | None = None
    member_limit: int | None = None
    creates_join_request: bool = False
    is_primary: bool = False
    revoked: bool = False
    uses: int = 0
    joined_user_ids: list[int] = field(default_factory=list)
    pending: set[int] = field(default_factory=set)


@dataclass
class StoredMessage:
    data: dict[str, Any]
    sender_id: int
    deleted: bool = False


@dataclass
class ChatLog:
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_id: int = 1


@dataclass
class Group:
    id: int
    type: str
    title: str
    owner_id: int
    username: str | None = None
    members: dict[int, Member] = field(default_factory=dict)
    links: dict[str, InviteLink] = field(default_factory=dict)
    join_requests: dict[int, str | None] = field(default_factory=dict)
    log: ChatLog = field(default_factory=ChatLog)


@dataclass
class Invoice:
    bot_id: int
    title: str
    description: str
    payload: str
    currency: str
    total_amount: int
    chat_id: int | None = None
    message_id: int | None = None
    link: str | None = None
    subscription_period: int | None = None


@dataclass
class Checkout:
    id: str
    bot_id: int
    user_id: int
    invoice: Invoice
    future: asyncio.Future[tuple[bool, str | None]]
    expired: bool = False


@dataclass
class Charge:
    id: str
    bot_id: int
    user_id: int
    invoice: Invoice
    date: int
    refunded: bool = False
    canceled: bool = False


@dataclass
class CallbackRecord:
    id: str
    bot_id: int
    user_id: int
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None


def new_secret(n: int = 12) -> str:
    return secrets.token_urlsafe(n)


def member_api(m: Member, user: User) -> dict[str, Any]:
    u = user.to_api()
    if m.status == "creator":
        return {"status": "creator", "user": u, "is_anonymous": False}
    if m.status == "administrator":
        out: dict[str, Any] = {
            "status": "administrator",
            "user": u,
            "can_be_edited": False,
            "is_anonymous": False,
        }
        out.update({r: bool(m.rights.get(r, False)) for r in ADMIN_RIGHTS})
        out["can_send_welcome_messages"] = bool(
            m.rights.get("can_send_welcome_messages", False)
        )  # aiogram 3.31
        out.update({r: bool(m.rights[r]) for r in OPTIONAL_ADMIN_RIGHTS if r in m.rights})
        return out
    if m.status == "restricted":
        out = {"status": "restricted", "user": u, "is_member": True, "until_date": m.until_date}
        out.update({r: bool(m.rights.get(r, False)) for r in RESTRICTED_RIGHTS})
        return out
    if m.status == "kicked":
        return {"status": "kicked", "user": u, "until_date": m.until_date}
    if m.status == "member":
        return {"status": "member", "user": u}
    return {"status": "left", "user": u}
