"""Broadcasts end to end: segments, once per member, blocked members, restarts, cancel, pace, /broadcast."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from subbot.app import SubbotApp
from subbot.sandbox.telegram.testing import wait_for
from subbot.services import broadcasts
from subbot.store.models import Broadcast, OutboxJob, Subscription, User
from tests.e2e.conftest import World, buttons, text_has, wait_for_async

FAST = 30.0  # BROADCAST_RATE for the tests that are not about pace


async def seed(world: World, app: SubbotApp, kinds: list[str]) -> list[int]:
    """Members who started the bot, one per kind, in id order.

    Kinds: active, expiring (3 days left), later (10 days left), lifetime_and_soon (one plan ends in 3 days,
    another is lifetime), whitelisted, expired, none (wrote, never paid), known_blocked (active, and the
    database already knows they blocked the bot).
    """
    now = world.clock.now()
    plan = next(iter(app.ctx.plans))
    ids: list[int] = []
    async with app.ctx.transaction() as s:
        for n, kind in enumerate(kinds):
            uid = world.user(f"M{len(world.sandbox.world.users)}x{n}")
            world.sandbox.world.bot_for(None).started_by.add(uid)  # they wrote to the bot
            ids.append(uid)
            s.add(
                User(
                    id=uid, first_name=f"m{n}", is_whitelisted=kind == "whitelisted",
                    blocked_bot_at=now if kind == "known_blocked" else None, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            await s.flush()
            plan_ends: dict[str, list[timedelta | None]] = {
                "active": [timedelta(days=30)],
                "known_blocked": [timedelta(days=30)],
                "expiring": [timedelta(days=3)],
                "later": [timedelta(days=10)],
                "lifetime_and_soon": [timedelta(days=3), None],
                "expired": [timedelta(days=-5)],
            }
            for end in plan_ends.get(kind, []):
                s.add(
                    Subscription(
                        user_id=uid, plan_code=plan, starts_at=now - timedelta(days=40),
                        ends_at=None if end is None else now + end,
                        status="expired" if kind == "expired" else "active", source="grant",
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
    return ids


def copies(world: World, uid: int, text: str) -> int:
    return sum(1 for m in world.sandbox.messages_to(uid) if m.get("text") == text)


def delivered(world: World, uids: list[int], text: str) -> int:
    return sum(copies(world, u, text) for u in uids)


async def settled(app: SubbotApp, broadcast_id: int, timeout: float = 15.0) -> dict[str, object]:
    """Wait until nothing of the broadcast is pending or running; its progress then."""
    found: dict[str, object] = {}

    async def check() -> bool:
        p = await broadcasts.progress(app.ctx, broadcast_id)
        found.update(p)
        return bool(p["status"] != "queuing" and p["pending"] == 0)

    await wait_for_async(check, timeout)
    return found


async def recipients(app: SubbotApp, broadcast_id: int) -> set[int]:
    async with app.db.sessions() as s:
        jobs = (await s.scalars(select(OutboxJob).where(OutboxJob.kind == "broadcast"))).all()
    return {int(j.payload["user_id"]) for j in jobs if j.payload["broadcast_id"] == broadcast_id}


async def test_segments_pick_the_right_people(world: World) -> None:
    app = await world.start(workers=False, bot=False)
    kinds = [
        "active", "expiring", "later", "lifetime_and_soon", "whitelisted", "expired", "none", "known_blocked",
    ]  # fmt: skip
    people = dict(zip(kinds, await seed(world, app, kinds), strict=True))
    expected = {
        "active": {"active", "expiring", "later", "lifetime_and_soon", "whitelisted"},
        "expiring": {"expiring"},
        "expired": {"expired"},
        "all": set(kinds) - {"known_blocked"},
    }
    made = {}
    for segment, who in expected.items():
        days = 7 if segment == "expiring" else None
        assert await broadcasts.preview(app.ctx, segment, days) == len(who), segment
        made[segment] = await broadcasts.create(app.ctx, f"to {segment}", segment, days, "test")
    # Queued in small pages: the cursor carries on from one call to the next.
    while await broadcasts.queue_some(app.ctx, limit=3):
        pass
    for segment, who in expected.items():
        assert await recipients(app, made[segment].id) == {people[k] for k in who}, segment
        async with app.db.sessions() as s:
            b = await s.get(Broadcast, made[segment].id)
        assert b is not None and b.status == "sending" and b.total == len(who)
    # A 30-day window takes in the 3-, 10- and 30-day ends; a lifetime plan alongside keeps one out.
    assert await broadcasts.preview(app.ctx, "expiring", 30) == 3
    bad: list[tuple[str, str, int | None]] = [
        ("   ", "all", None),
        ("x" * 4097, "all", None),
        ("😀" * 2049, "all", None),  # 4098 UTF-16 units, as Telegram counts
        ("hi", "vip", None),
        ("hi", "expiring", 0),
        ("hi", "expiring", 366),
    ]
    for text, segment, days in bad:
        with pytest.raises(broadcasts.BroadcastError):
            await broadcasts.create(app.ctx, text, segment, days, "test")


async def test_reaches_each_member_once_and_skips_who_blocked(world: World) -> None:
    app = await world.start(broadcast_rate=FAST)
    blocker, *members = await seed(world, app, ["active"] * 10)
    (known,) = await seed(world, app, ["known_blocked"])
    await world.sandbox.block_bot(blocker)  # the database does not know yet: the send will tell
    text = "Big news: new content this week!"
    b = await broadcasts.create(app.ctx, text, "active", None, "test")
    # The sweep queues it, the worker sends it, the sweep closes it.
    await wait_for_async(lambda: _status_is(app, b.id, "done"), timeout=15)
    assert all(copies(world, u, text) == 1 for u in members)
    assert copies(world, blocker, text) == 0 and copies(world, known, text) == 0
    p = await broadcasts.progress(app.ctx, b.id)
    assert (p["total"], p["sent"], p["failed"], p["blocked"], p["pending"]) == (10, 9, 1, 1, 0)
    async with app.db.sessions() as s:
        user = await s.get(User, blocker)
    assert user is not None and user.blocked_bot_at is not None  # marked by the worker


async def _status_is(app: SubbotApp, broadcast_id: int, status: str) -> bool:
    b = await broadcasts.get(app.ctx, broadcast_id)
    return b is not None and str(b.status) == status


async def test_resumed_after_a_restart_without_duplicates(world: World) -> None:
    # Workers start after the manual queuing below: the broadcast sweep must not queue all 30 first.
    app = await world.start(workers=False, broadcast_rate=15)
    members = await seed(world, app, ["active"] * 30)
    text = "Restart-proof announcement"
    b = await broadcasts.create(app.ctx, text, "active", None, "test")
    assert await broadcasts.queue_some(app.ctx, limit=10) == 10  # a third queued; the rest is left to sweeps
    await app.start_workers()
    await wait_for(lambda: delivered(world, members, text) >= 5, timeout=10)
    await world.stop(app)  # mid-way: jobs claimed but not sent stay leased, the rest maybe not queued yet
    before = delivered(world, members, text)
    assert 5 <= before < 30
    world.clock.advance(timedelta(minutes=6))  # the dead process's leases run out
    app = await world.start(broadcast_rate=FAST)
    await wait_for_async(lambda: _status_is(app, b.id, "done"), timeout=20)
    assert Counter(copies(world, u, text) for u in members) == {1: 30}
    p = await broadcasts.progress(app.ctx, b.id)
    assert (p["total"], p["sent"], p["failed"], p["pending"]) == (30, 30, 0, 0)


async def test_cancel_stops_the_rest(world: World) -> None:
    app = await world.start(broadcast_rate=10)
    members = await seed(world, app, ["active"] * 30)
    text = "This one gets cancelled"
    b = await broadcasts.create(app.ctx, text, "active", None, "test")
    await broadcasts.queue_some(app.ctx)
    await wait_for(lambda: delivered(world, members, text) >= 3, timeout=10)
    await broadcasts.cancel(app.ctx, b.id, "test")
    p = await settled(app, b.id)
    got = delivered(world, members, text)
    assert p["status"] == "cancelled" and p["sent"] == got and got < 15
    assert p["cancelled"] == 30 - got and p["failed"] == 0
    assert all(copies(world, u, text) <= 1 for u in members)
    try:
        await broadcasts.cancel(app.ctx, b.id, "test")
    except broadcasts.BroadcastError as exc:
        assert "already cancelled" in str(exc)
    else:
        raise AssertionError("cancelled twice")


async def test_pace_follows_broadcast_rate(world: World) -> None:
    app = await world.start(broadcast_rate=20)
    members = await seed(world, app, ["active"] * 40)
    text = "Paced message"
    started = time.monotonic()
    b = await broadcasts.create(app.ctx, text, "active", None, "test")
    await broadcasts.queue_some(app.ctx)
    await wait_for(lambda: delivered(world, members, text) == 40, timeout=15)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 8, elapsed  # 40 messages at 20/s: 39 gaps of 50 ms
    assert (await settled(app, b.id))["sent"] == 40


async def test_admin_composes_previews_and_confirms(world: World) -> None:
    admin, outsider = world.user("Admin"), world.user("Outsider")
    app = await world.start(broadcast_rate=FAST, admin_ids=[admin])
    members = await seed(world, app, ["active", "active", "expired"])
    # Not for members: the command is ignored like the other admin commands.
    await world.sandbox.send_text(outsider, "/broadcast")
    await world.sandbox.send_text(outsider, "/help")
    await world.reply(outsider, text_has("How it works"))
    assert not [m for m in world.sandbox.messages_to(outsider) if "broadcast" in str(m.get("text")).lower()]

    seen = world.seen(admin)
    await world.sandbox.send_text(admin, "/broadcast")
    ask = await world.reply(admin, text_has("Who should receive it"), after=seen)
    assert {b["callback_data"] for b in buttons(ask)} >= {
        "bcast:seg:active", "bcast:seg:expiring", "bcast:seg:expired", "bcast:seg:all",
    }  # fmt: skip
    await world.sandbox.press_button(admin, ask["message_id"], "bcast:seg:active")
    await world.reply(admin, text_has("Now send the message text"), after=seen)
    text = "Hello members! <b>not bold</b> & plain"
    await world.sandbox.send_text(admin, f"  {text}\n")
    preview = await world.reply(admin, lambda m: m.get("text") == text, after=seen)
    confirm = await world.reply(admin, text_has("It goes to 2 members"), after=seen)
    assert preview["message_id"] < confirm["message_id"]
    assert await _count(app) == 0  # nothing stored before Confirm
    await world.sandbox.press_button(admin, confirm["message_id"], "bcast:ok")
    done = await world.reply(admin, text_has("is on its way"), after=seen)
    with_id = done["text"].split("#", 1)[1].split()[0]
    await wait_for(lambda: delivered(world, members[:2], text) == 2, timeout=10)
    assert copies(world, members[2], text) == 0
    assert copies(world, admin, text) == 1  # only the preview
    # A second press of the same Confirm button creates nothing.
    await world.sandbox.press_button(admin, confirm["message_id"], "bcast:ok")
    await settled(app, int(with_id))  # delivered, and recorded as sent
    await world.sandbox.send_text(admin, f"/broadcast_status {with_id}")
    status = await world.reply(admin, text_has(f"Broadcast #{with_id} ("), after=seen)
    assert "2/2 sent, 0 pending, 0 failed" in status["text"], status["text"]
    assert await _count(app) == 1


async def _count(app: SubbotApp) -> int:
    async with app.db.sessions() as s:
        return len((await s.scalars(select(Broadcast.id))).all())
