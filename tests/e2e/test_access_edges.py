"""Join requests, Telegram's 429s, and the guard that makes any spec-invalid call fail the run."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from aiogram.exceptions import TelegramBadRequest
from sqlalchemy import select

from subbot.sandbox.telegram.testing import wait_for
from subbot.store.models import OutboxJob
from tests.e2e.conftest import World, buttons, text_has, wait_for_async
from tests.e2e.test_stars_journey import buy


async def test_join_request_chat_approves_payers_and_declines_others(world: World) -> None:
    vip = world.sandbox.add_group("VIP", owner_id=world.sandbox.add_user("VipOwner"))
    world.sandbox.set_admin(vip, world.bot_id, can_invite_users=True, can_restrict_members=True)
    await world.start(group_id=vip, join_request_chat_ids=[vip])
    alice, eve = world.user("Alice"), world.user("Eve")
    await buy(world, alice)
    grant = await world.reply(alice, text_has("Payment received"))
    url = buttons(grant)[0]["url"]
    (link,) = world.sandbox.invite_links(vip)
    assert link["creates_join_request"] is True and "member_limit" not in link
    assert await world.sandbox.open_invite_link(alice, url) == "requested"
    await world.sandbox.wait_for_status(vip, alice, "member") if hasattr(
        world.sandbox, "wait_for_status"
    ) else None

    await wait_for(lambda: world.sandbox.member_status(vip, alice) == "member", timeout=10)
    # Eve has no subscription: declined, and told why in a private message.
    await world.sandbox.send_text(eve, "/help")
    assert await world.sandbox.open_invite_link(eve, url) == "requested"
    await world.reply(eve, text_has("declined"))
    assert world.sandbox.member_status(vip, eve) == "left"


async def test_telegram_429_is_honoured_and_nothing_is_lost(world: World) -> None:
    app = await world.start()
    alice = world.user("Alice")
    world.sandbox.faults.rate_limit_next(1, retry_after=30, methods=["createChatInviteLink"])
    await buy(world, alice)

    async def rescheduled() -> bool:
        async with app.db.sessions() as s:
            job = (await s.scalars(select(OutboxJob))).first()
            return job is not None and job.state == "pending" and job.attempts == 1

    await wait_for_async(rescheduled)
    async with app.db.sessions() as s:
        job = (await s.scalars(select(OutboxJob))).one()
    assert job.run_at == world.clock.now() + timedelta(seconds=30) and "retry after" in (job.last_error or "")
    world.clock.advance(timedelta(seconds=31))
    app.ctx.outbox_wakeup.set()
    grant = await world.reply(alice, text_has("Payment received"))
    assert len(buttons(grant)) == 1
    assert len(world.sandbox.invite_links(world.group)) == 1  # the refused call created nothing


async def test_a_call_invalid_against_the_spec_is_recorded_and_would_fail_the_run(world: World) -> None:
    app = await world.start(workers=False, bot=False)
    token = app.settings.require_bot_token()
    async with httpx.AsyncClient() as client:
        missing = await client.post(f"{world.url}/bot{token}/sendMessage", json={"chat_id": world.group})
        wrong_type = await client.post(
            f"{world.url}/bot{token}/banChatMember", json={"chat_id": world.group, "user_id": "not-a-number"}
        )
    assert missing.status_code == 400 and "text" in missing.json()["description"]
    assert wrong_type.status_code == 400 and "user_id" in wrong_type.json()["description"]
    assert len(world.sandbox.violations) == 2
    # The world fixture asserts there are none left at teardown: that is what fails a run on a bad call.
    world.sandbox.violations.clear()
    # aiogram's own client-side validation cannot produce such calls; semantic errors are plain 400s.
    with pytest.raises(TelegramBadRequest):
        await app.bot.create_chat_invite_link(world.group, member_limit=1, creates_join_request=True)
