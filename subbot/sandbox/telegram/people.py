"""What a person can do in the sandbox: write to a bot, press buttons, open links, pay."""

from __future__ import annotations

import asyncio
import copy
import secrets
from typing import Any

from .markup import command_entities
from .models import IN_CHAT, BotAccount, CallbackRecord, Charge, Checkout, Invoice, Member, User, member_api
from .state import World

PRE_CHECKOUT_DEADLINE = 10.0


def _human(world: World, user_id: int) -> User:
    user = world.users.get(user_id)
    if user is None:
        raise ValueError(f"unknown user {user_id}")
    return user


def _set_blocked(world: World, bot: BotAccount, user: User, blocked: bool) -> None:
    if (user.id in bot.blocked_by) == blocked:
        return
    if blocked:
        bot.blocked_by.add(user.id)
    else:
        bot.blocked_by.discard(user.id)
    old, new = Member("member"), Member("kicked")
    if not blocked:
        old, new = new, old
    world.emit(
        bot,
        "my_chat_member",
        {
            "chat": world.private_chat(user),
            "from": user.to_api(),
            "date": int(world.now()),
            "old_chat_member": member_api(old, bot.user),
            "new_chat_member": member_api(new, bot.user),
        },
    )


async def send_text(world: World, user_id: int, text: str, bot_token: str | None = None) -> dict[str, Any]:
    bot = world.bot_for(bot_token)
    user = _human(world, user_id)
    if not text:
        raise ValueError("text must not be empty")
    _set_blocked(world, bot, user, False)  # writing to a blocked bot unblocks it
    bot.started_by.add(user.id)
    log = world.private_log(bot.id, user.id)
    msg = world.add_message(
        log, user.id, world.private_chat(user), text=text, entities=command_entities(text) or None
    )
    world.emit(bot, "message", msg)
    return copy.deepcopy(msg)


async def press_button(
    world: World, user_id: int, message_id: int, callback_data: str, bot_token: str | None = None
) -> str:
    bot = world.bot_for(bot_token)
    user = _human(world, user_id)
    stored = world.private_log(bot.id, user.id).messages.get(message_id)
    if stored is None or stored.deleted:
        raise ValueError(f"no message {message_id} in the chat of user {user_id} with the bot")
    rows = (stored.data.get("reply_markup") or {}).get("inline_keyboard") or []
    if not any(b.get("callback_data") == callback_data for row in rows for b in row):
        raise ValueError(f"message {message_id} has no button with callback_data {callback_data!r}")
    query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    world.callbacks[query_id] = CallbackRecord(query_id, bot.id, user.id, world.now())
    world.emit(
        bot,
        "callback_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "message": copy.deepcopy(stored.data),
            "chat_instance": str(abs(hash((bot.id, user.id))) % 10**18),
            "data": callback_data,
        },
    )
    return query_id


async def open_invite_link(world: World, user_id: int, invite_link: str) -> str:
    user = _human(world, user_id)
    link = world.find_link(invite_link.strip())
    if link is None:
        return "expired"  # Telegram says "invite link expired" for unknown links too
    group = world.groups[link.chat_id]
    if link.revoked:
        return "revoked"
    if link.expire_date and link.expire_date <= world.now():
        return "expired"
    status = world.member(group, user.id).status
    if status in IN_CHAT:
        return "already_member"
    if status == "kicked":
        return "banned"
    if link.member_limit and link.uses >= link.member_limit:
        return "limit_reached"
    if link.creates_join_request:
        if user.id not in group.join_requests:
            group.join_requests[user.id] = link.link
            link.pending.add(user.id)
            payload = {
                "chat": world.group_chat(group),
                "from": user.to_api(),
                "user_chat_id": user.id,
                "date": int(world.now()),
                "invite_link": world.link_dict(link),
            }
            for bot in world.bots.values():
                m = world.member(group, bot.id)
                if m.status == "creator" or (
                    m.status == "administrator" and m.rights.get("can_invite_users")
                ):
                    bot.reachable_until[user.id] = (
                        world.now() + 300
                    )  # may write to user_chat_id for 5 minutes
                    world.emit(bot, "chat_join_request", payload)
        return "requested"
    link.uses += 1
    link.joined_user_ids.append(user.id)
    world.change_membership(group, user.id, user.id, "member", link=link)
    return "joined"


async def leave_chat(world: World, user_id: int, chat_id: int) -> None:
    user = _human(world, user_id)
    group = world.groups.get(chat_id)
    if group is None:
        raise ValueError(f"unknown chat {chat_id}")
    if world.member(group, user.id).status in IN_CHAT:
        world.change_membership(group, user.id, user.id, "left")


async def block_bot(world: World, user_id: int, bot_token: str | None = None, blocked: bool = True) -> None:
    _set_blocked(world, world.bot_for(bot_token), _human(world, user_id), blocked)


async def pay_invoice(
    world: World, user_id: int, message_id: int, bot_token: str | None, wait: float
) -> dict[str, Any]:
    bot = world.bot_for(bot_token)
    user = _human(world, user_id)
    invoice = world.invoices.get((bot.id, user.id, message_id))
    if invoice is None:
        raise ValueError(f"message {message_id} in the chat of user {user_id} is not an invoice")
    return await checkout(world, bot, user, invoice, wait)


async def pay_invoice_link(world: World, user_id: int, link: str, wait: float) -> dict[str, Any]:
    user = _human(world, user_id)
    invoice = world.invoice_links.get(link.strip())
    if invoice is None:
        raise ValueError(f"unknown invoice link {link!r}")
    return await checkout(world, world.bots[invoice.bot_id], user, invoice, wait)


async def checkout(
    world: World, bot: BotAccount, user: User, invoice: Invoice, wait: float
) -> dict[str, Any]:
    """Pre-checkout query → wait for the bot's answer → successful_payment message."""
    query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    future: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
    chk = Checkout(query_id, bot.id, user.id, invoice, future)
    world.checkouts[query_id] = chk
    world.emit(
        bot,
        "pre_checkout_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "currency": invoice.currency,
            "total_amount": invoice.total_amount,
            "invoice_payload": invoice.payload,
        },
    )
    try:
        ok, error = await asyncio.wait_for(asyncio.shield(future), min(wait, PRE_CHECKOUT_DEADLINE))
    except TimeoutError:
        chk.expired = True
        world.checkouts.pop(query_id, None)
        return {"status": "timeout"}
    if not ok:
        return {"status": "declined", "error_message": error or ""}
    charge = Charge("stxSBX" + secrets.token_hex(16), bot.id, user.id, invoice, int(world.now()))
    world.charges[charge.id] = charge
    msg = payment_message(world, bot, user, charge, first=True)
    return {"status": "paid", "telegram_payment_charge_id": charge.id, "message_id": msg["message_id"]}


def payment_message(world: World, bot: BotAccount, user: User, charge: Charge, first: bool) -> dict[str, Any]:
    inv = charge.invoice
    payment: dict[str, Any] = {
        "currency": inv.currency,
        "total_amount": inv.total_amount,
        "invoice_payload": inv.payload,
        "telegram_payment_charge_id": charge.id,
        "provider_payment_charge_id": "" if inv.currency == "XTR" else "prov_" + charge.id,
    }
    if inv.subscription_period:
        payment["subscription_expiration_date"] = charge.date + inv.subscription_period
        payment["is_recurring"] = True
        if first:
            payment["is_first_recurring"] = True
    log = world.private_log(bot.id, user.id)
    msg = world.add_message(log, user.id, world.private_chat(user), successful_payment=payment)
    world.emit(bot, "message", msg)
    return msg


def renew_subscription(world: World, charge_id: str) -> dict[str, Any]:
    """Simulate Telegram charging the next period of a Stars subscription."""
    first = world.charges.get(charge_id)
    if first is None or not first.invoice.subscription_period:
        raise ValueError(f"{charge_id!r} is not a subscription charge")
    if first.canceled:
        return {"status": "canceled"}
    bot, user = world.bots[first.bot_id], _human(world, first.user_id)
    charge = Charge("stxSBX" + secrets.token_hex(16), bot.id, user.id, first.invoice, int(world.now()))
    charge.canceled = first.canceled
    world.charges[charge.id] = charge
    msg = payment_message(world, bot, user, charge, first=False)
    return {"status": "paid", "telegram_payment_charge_id": charge.id, "message_id": msg["message_id"]}
