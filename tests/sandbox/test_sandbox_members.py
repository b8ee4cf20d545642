"""Groups: invite links, join requests, bans/unbans, rights."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError

from subbot.sandbox.telegram import TelegramSandbox

from .conftest import Clock, Poller


async def test_member_limit_one(bot: Bot, sb: TelegramSandbox, group: int) -> None:
    alice, bob = sb.add_user("Alice"), sb.add_user("Bob")
    link = await bot.create_chat_invite_link(group, name="for alice", member_limit=1)
    assert (
        link.invite_link.startswith("https://t.me/+") and link.member_limit == 1 and link.name == "for alice"
    )
    assert await sb.open_invite_link(alice, link.invite_link) == "joined"
    assert await sb.open_invite_link(alice, link.invite_link) == "already_member"
    assert await sb.open_invite_link(bob, link.invite_link) == "limit_reached"
    assert sb.member_status(group, alice) == "member" and sb.member_status(group, bob) == "left"
    [info] = sb.invite_links(group)
    assert info["uses"] == 1 and info["joined_user_ids"] == [alice] and info["revoked"] is False
    other = await bot.create_chat_invite_link(group)
    assert other.invite_link != link.invite_link


async def test_link_expiry_uses_injected_clock(
    bot: Bot, sb: TelegramSandbox, clock: Clock, group: int
) -> None:
    alice, bob = sb.add_user("Alice"), sb.add_user("Bob")
    link = await bot.create_chat_invite_link(group, expire_date=int(clock.t) + 60)
    assert link.expire_date is not None and int(link.expire_date.timestamp()) == int(clock.t) + 60
    assert await sb.open_invite_link(alice, link.invite_link) == "joined"
    clock.t += 61
    assert await sb.open_invite_link(bob, link.invite_link) == "expired"
    assert sb.member_status(group, bob) == "left"
    assert await sb.open_invite_link(bob, "https://t.me/+doesnotexist") == "expired"


async def test_revoke_and_edit(bot: Bot, sb: TelegramSandbox, group: int) -> None:
    alice = sb.add_user("Alice")
    link = await bot.create_chat_invite_link(group, member_limit=3)
    edited = await bot.edit_chat_invite_link(group, link.invite_link, name="renamed")
    assert edited.name == "renamed" and edited.member_limit is None  # left-out options are reset
    revoked = await bot.revoke_chat_invite_link(group, link.invite_link)
    assert revoked.is_revoked is True
    assert await sb.open_invite_link(alice, link.invite_link) == "revoked"
    with pytest.raises(TelegramBadRequest, match="revoked"):
        await bot.edit_chat_invite_link(group, link.invite_link, name="x")
    primary = await bot.export_chat_invite_link(group)
    assert primary.startswith("https://t.me/+")
    assert (await bot.get_chat(group)).invite_link == primary
    assert await sb.open_invite_link(alice, primary) == "joined"


async def test_link_option_errors(bot: Bot, group: int) -> None:
    with pytest.raises(TelegramBadRequest, match="member_limit can't be specified with creates_join_request"):
        await bot.create_chat_invite_link(group, member_limit=5, creates_join_request=True)
    with pytest.raises(TelegramBadRequest, match="member_limit"):
        await bot.create_chat_invite_link(group, member_limit=100000)
    with pytest.raises(TelegramBadRequest, match="name"):
        await bot.create_chat_invite_link(group, name="x" * 33)


async def test_join_request_approve_and_decline(
    bot: Bot, sb: TelegramSandbox, poller: Poller, group: int
) -> None:
    await poller.poll(timeout=0, allowed=["chat_member", "chat_join_request"])
    alice, bob = sb.add_user("Alice"), sb.add_user("Bob")
    link = await bot.create_chat_invite_link(group, creates_join_request=True)
    assert await sb.open_invite_link(alice, link.invite_link) == "requested"
    assert await sb.open_invite_link(bob, link.invite_link) == "requested"
    up = await poller.until(lambda u: u.chat_join_request is not None)
    req = up.chat_join_request
    assert (
        req is not None and req.from_user.id == alice and req.user_chat_id == alice and req.chat.id == group
    )
    assert req.invite_link is not None and req.invite_link.invite_link == link.invite_link
    assert sb.member_status(group, alice) == "left"
    # the bot may write to the requester for a while even though they never started it
    await bot.send_message(req.user_chat_id, "Please pay first")
    assert await bot.approve_chat_join_request(group, alice)
    assert await bot.decline_chat_join_request(group, bob)
    assert sb.member_status(group, alice) == "member" and sb.member_status(group, bob) == "left"
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await bot.approve_chat_join_request(group, bob)
    assert sb.invite_links(group)[0]["uses"] == 1
    up = await poller.until(lambda u: u.chat_member is not None)
    assert up.chat_member is not None and up.chat_member.new_chat_member.status == "member"


async def test_ban_then_unban_only_if_banned_allows_rejoin(bot: Bot, sb: TelegramSandbox, group: int) -> None:
    alice = sb.add_user("Alice")
    first = await bot.create_chat_invite_link(group, member_limit=1)
    assert await sb.open_invite_link(alice, first.invite_link) == "joined"
    assert await bot.ban_chat_member(group, alice)
    assert sb.member_status(group, alice) == "kicked"
    assert (await bot.get_chat_member(group, alice)).status == "kicked"
    second = await bot.create_chat_invite_link(group, member_limit=1)
    assert await sb.open_invite_link(alice, second.invite_link) == "banned"
    assert await bot.unban_chat_member(group, alice, only_if_banned=True)
    assert sb.member_status(group, alice) == "left"
    assert await sb.open_invite_link(alice, second.invite_link) == "joined"


async def test_unban_semantics(bot: Bot, sb: TelegramSandbox, group: int) -> None:
    alice = sb.add_user("Alice")
    sb.add_member(group, alice)
    assert await bot.unban_chat_member(group, alice, only_if_banned=True)
    assert sb.member_status(group, alice) == "member"  # only_if_banned: members stay
    assert await bot.unban_chat_member(group, alice)
    assert sb.member_status(group, alice) == "left"  # without it: removed (not banned)
    assert await bot.get_chat_member_count(group) == 2  # owner + bot


async def test_temporary_ban_expires(bot: Bot, sb: TelegramSandbox, clock: Clock, group: int) -> None:
    alice = sb.add_user("Alice")
    sb.add_member(group, alice)
    assert await bot.ban_chat_member(group, alice, until_date=int(clock.t) + 3600)
    assert sb.member_status(group, alice) == "kicked"
    clock.t += 3601
    assert sb.member_status(group, alice) == "left"


async def test_protected_members(bot: Bot, sb: TelegramSandbox, group: int) -> None:
    owner = next(uid for uid, s in sb.members(group).items() if s == "creator")
    with pytest.raises(TelegramBadRequest, match="can't remove chat owner"):
        await bot.ban_chat_member(group, owner)
    admin = sb.add_user("Adam")
    sb.set_admin(group, admin)
    with pytest.raises(TelegramBadRequest, match="administrator"):
        await bot.ban_chat_member(group, admin)
    with pytest.raises(TelegramBadRequest, match="USER_ID_INVALID"):
        await bot.ban_chat_member(group, 424242)
    with pytest.raises(TelegramBadRequest, match="user not found"):
        await bot.get_chat_member(group, 424242)
    admins = await bot.get_chat_administrators(group)
    assert {a.status for a in admins} == {"creator", "administrator"} and len(admins) == 3


async def test_missing_rights(bot: Bot, sb: TelegramSandbox) -> None:
    owner, alice = sb.add_user("Olga"), sb.add_user("Alice")
    gid = sb.add_group("Club", owner_id=owner)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member"):
        await bot.create_chat_invite_link(gid)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(-100999)
    sb.set_admin(gid, bot.id, can_invite_users=False, can_restrict_members=False)
    sb.add_member(gid, alice)
    with pytest.raises(TelegramBadRequest, match="not enough rights to create invite link"):
        await bot.create_chat_invite_link(gid)
    with pytest.raises(TelegramBadRequest, match="not enough rights to restrict/unrestrict chat member"):
        await bot.ban_chat_member(gid, alice)
    with pytest.raises(TelegramBadRequest, match="not enough rights"):
        await bot.unban_chat_member(gid, alice)
    assert sb.member_status(gid, alice) == "member"


async def test_leave_emits_chat_member(bot: Bot, sb: TelegramSandbox, poller: Poller, group: int) -> None:
    await poller.poll(timeout=0, allowed=["chat_member"])
    alice = sb.add_user("Alice")
    sb.add_member(group, alice)
    await sb.leave_chat(alice, group)
    up = await poller.until(lambda u: u.chat_member is not None, allowed=["chat_member"])
    assert up.chat_member is not None
    assert (up.chat_member.old_chat_member.status, up.chat_member.new_chat_member.status) == (
        "member",
        "left",
    )
    assert await bot.ban_chat_member(group, alice)  # banning a non-member is allowed
    up = await poller.until(lambda u: u.chat_member is not None, allowed=["chat_member"])
    assert up.chat_member is not None and up.chat_member.new_chat_member.status == "kicked"
