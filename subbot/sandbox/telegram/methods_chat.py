"""Bot API methods for groups: chat info, members, bans, invite links, join requests."""

from __future__ import annotations

from typing import Any

from .core import Ctx, bad_request, method
from .models import IN_CHAT, Group, InviteLink, member_api
from .state import World

NO_RESTRICT = "not enough rights to restrict/unrestrict chat member"
NO_INVITE = "not enough rights to create invite link"
NO_JOIN_REQUESTS = "not enough rights to manage join requests"
GIFT_TYPES = {
    "unlimited_gifts": True,
    "limited_gifts": True,
    "unique_gifts": True,
    "premium_subscription": True,
    "gifts_from_channels": True,
}


def _group(ctx: Ctx, chat_id: int | str) -> Group:
    if isinstance(chat_id, int) and chat_id > 0:
        if chat_id in ctx.world.users:
            raise bad_request("method is available only for supergroups and channel")
        raise bad_request("chat not found")
    return ctx.world.bot_group(ctx.bot, chat_id)


def _user_id(world: World, uid: int) -> int:
    if world.person(uid) is None:
        raise bad_request("USER_ID_INVALID")
    return uid


# --------------------------------------------------------------------- info
@method("getChat")
async def get_chat(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    chat_id = p["chat_id"]
    base = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": dict(GIFT_TYPES)}
    if isinstance(chat_id, int) and chat_id > 0:
        user = w.person(chat_id)
        if user is None:
            raise bad_request("chat not found")
        return {**w.private_chat(user), **base}
    group = w.bot_group(ctx.bot, chat_id)
    out = {**w.group_chat(group), **base}
    primary = [lk for lk in group.links.values() if lk.is_primary and not lk.revoked]
    if primary:
        out["invite_link"] = primary[-1].link
    return out


@method("getChatMember")
async def get_chat_member(ctx: Ctx, p: dict[str, Any]) -> Any:
    group = _group(ctx, p["chat_id"])
    user = ctx.world.person(p["user_id"])
    if user is None:
        raise bad_request("user not found")
    return member_api(ctx.world.member(group, user.id), user)


@method("getChatAdministrators")
async def get_chat_administrators(ctx: Ctx, p: dict[str, Any]) -> Any:
    group = _group(ctx, p["chat_id"])
    w = ctx.world
    out = []
    for uid in list(group.members):
        if w.member(group, uid).status in ("creator", "administrator"):
            out.append(w.member_dict(group, uid))
    return out


@method("getChatMemberCount")
async def get_chat_member_count(ctx: Ctx, p: dict[str, Any]) -> Any:
    group = _group(ctx, p["chat_id"])
    return sum(1 for uid in list(group.members) if ctx.world.member(group, uid).status in IN_CHAT)


@method("leaveChat")
async def leave_chat(ctx: Ctx, p: dict[str, Any]) -> Any:
    group = _group(ctx, p["chat_id"])
    ctx.world.change_membership(group, ctx.bot.id, ctx.bot.id, "left")
    return True


# --------------------------------------------------------------------- bans
def _protect(world: World, group: Group, uid: int, bot_id: int) -> None:
    status = world.member(group, uid).status
    if status == "creator":
        raise bad_request("can't remove chat owner")
    if uid == bot_id:
        raise bad_request("can't restrict self")
    if status == "administrator":
        raise bad_request("user is an administrator of the chat")


@method("banChatMember")
async def ban_chat_member(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_restrict_members", NO_RESTRICT)
    uid = _user_id(w, p["user_id"])
    _protect(w, group, uid, ctx.bot.id)
    until = p.get("until_date") or 0
    if until and not ctx.now + 30 <= until <= ctx.now + 366 * 86400:
        until = 0  # Telegram: outside (30 s, 366 days) means "forever"
    w.change_membership(group, uid, ctx.bot.id, "kicked", until_date=until)
    return True


@method("unbanChatMember")
async def unban_chat_member(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_restrict_members", NO_RESTRICT)
    uid = _user_id(w, p["user_id"])
    status = w.member(group, uid).status
    if status == "kicked":
        w.change_membership(group, uid, ctx.bot.id, "left")
    elif status in IN_CHAT and not p.get("only_if_banned"):
        # "By default, this method guarantees that after the call the user is not a member of the chat"
        _protect(w, group, uid, ctx.bot.id)
        w.change_membership(group, uid, ctx.bot.id, "left")
    return True


# --------------------------------------------------------------- invite links
def _link_options(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("name")
    if name is not None and len(name) > 32:
        raise bad_request("invite link name is too long (max 32 characters)")
    limit = p.get("member_limit")
    if limit is not None and not 1 <= limit <= 99999:
        raise bad_request("member_limit must be between 1 and 99999")
    joinreq = bool(p.get("creates_join_request"))
    if limit is not None and joinreq:
        raise bad_request("member_limit can't be specified with creates_join_request")
    expire = p.get("expire_date") or None
    if expire is not None and expire < 0:
        raise bad_request("EXPIRE_DATE_INVALID")
    return {
        "name": name or None,
        "expire_date": expire,
        "member_limit": limit,
        "creates_join_request": joinreq,
    }


def _find_link(ctx: Ctx, group: Group, url: str) -> InviteLink:
    link = group.links.get(url)
    if link is None:
        raise bad_request("INVITE_HASH_EXPIRED")
    if link.creator_id != ctx.bot.id:
        raise bad_request("CHAT_ADMIN_REQUIRED")
    return link


@method("createChatInviteLink")
async def create_chat_invite_link(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_invite_users", NO_INVITE)
    link = InviteLink(link=w.new_link_url(), chat_id=group.id, creator_id=ctx.bot.id, **_link_options(ctx, p))
    group.links[link.link] = link
    return w.link_dict(link)


@method("editChatInviteLink")
async def edit_chat_invite_link(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_invite_users", NO_INVITE)
    link = _find_link(ctx, group, p["invite_link"])
    if link.revoked:
        raise bad_request("can't edit a revoked invite link")
    if link.is_primary:
        raise bad_request("can't edit the primary invite link")
    # as on Telegram, options that are left out are reset
    for key, value in _link_options(ctx, p).items():
        setattr(link, key, value)
    return w.link_dict(link)


@method("revokeChatInviteLink")
async def revoke_chat_invite_link(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_invite_users", NO_INVITE)
    link = _find_link(ctx, group, p["invite_link"])
    link.revoked = True
    if link.is_primary:
        _new_primary(w, group, ctx.bot.id)
    return w.link_dict(link)


def _new_primary(w: World, group: Group, bot_id: int) -> InviteLink:
    for old in group.links.values():
        if old.is_primary and old.creator_id == bot_id:
            old.revoked = True
    link = InviteLink(link=w.new_link_url(), chat_id=group.id, creator_id=bot_id, is_primary=True)
    group.links[link.link] = link
    return link


@method("exportChatInviteLink")
async def export_chat_invite_link(ctx: Ctx, p: dict[str, Any]) -> Any:
    group = _group(ctx, p["chat_id"])
    ctx.world.require_right(group, ctx.bot, "can_invite_users", NO_INVITE)
    return _new_primary(ctx.world, group, ctx.bot.id).link


# ------------------------------------------------------------- join requests
def _pending_request(ctx: Ctx, p: dict[str, Any]) -> tuple[Group, int, InviteLink | None]:
    w = ctx.world
    group = _group(ctx, p["chat_id"])
    w.require_right(group, ctx.bot, "can_invite_users", NO_JOIN_REQUESTS)
    uid = _user_id(w, p["user_id"])
    if uid not in group.join_requests:
        raise bad_request("HIDE_REQUESTER_MISSING")
    url = group.join_requests.pop(uid)
    link = group.links.get(url) if url else None
    if link is not None:
        link.pending.discard(uid)
    return group, uid, link


@method("approveChatJoinRequest")
async def approve_chat_join_request(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    group, uid, link = _pending_request(ctx, p)
    if w.member(group, uid).status in IN_CHAT:
        raise bad_request("USER_ALREADY_PARTICIPANT")
    if link is not None:
        link.uses += 1
        link.joined_user_ids.append(uid)
    w.change_membership(group, uid, ctx.bot.id, "member", link=link)
    return True


@method("declineChatJoinRequest")
async def decline_chat_join_request(ctx: Ctx, p: dict[str, Any]) -> Any:
    _pending_request(ctx, p)
    return True
