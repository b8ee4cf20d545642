"""`members sync`: the group compared with subscriptions over the real Bot API (sandbox), then cleaned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from subbot.sandbox.telegram.testing import wait_for
from subbot.services.member_sync import sync_members
from subbot.store import users
from subbot.store.models import Membership, OutboxJob, Subscription
from tests.e2e.conftest import World, wait_for_async

GHOST = 9_000_000_001  # has access in our database, unknown to Telegram


async def test_sync_reports_and_apply_removes_only_the_intruder(world: World) -> None:
    app = await world.start()
    sb, group = world.sandbox, world.group
    paula, ivan, ada, lena, wendy = (world.user(n) for n in ("Paula", "Ivan", "Ada", "Lena", "Wendy"))
    sb.add_member(group, paula)
    sb.add_member(group, ivan)  # his subscription ended long ago, yet he is in the group
    sb.set_admin(group, ada)  # an administrator without a subscription: never removed
    sb.add_member(group, lena, status="left")  # has access, left the group
    sb.add_member(group, wendy)  # whitelisted
    now = world.clock.now()

    def sub(user_id: int, ends_in: timedelta | None, status: str = "active", source: str = "payment") -> None:
        session.add(
            Subscription(
                user_id=user_id, plan_code="standard", starts_at=now - timedelta(days=60),
                ends_at=None if ends_in is None else now + ends_in, status=status, source=source,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip

    def member(user_id: int, state: str) -> None:
        session.add(Membership(user_id=user_id, chat_id=group, state=state, source="invite", updated_at=now))

    async with app.ctx.transaction() as session:
        for uid, name in ((paula, "Paula"), (ivan, "Ivan"), (ada, "Ada"), (lena, "Lena"), (wendy, "Wendy")):
            await users.upsert(session, uid, now, first_name=name, wrote_to_bot=False)
        await users.upsert(session, GHOST, now, first_name="Ghost", wrote_to_bot=False)
        await session.flush()
        sub(paula, timedelta(days=20))
        sub(ivan, timedelta(days=-40), status="expired")
        sub(lena, None, source="import")
        sub(GHOST, timedelta(days=5))
        member(paula, "joined")
        member(ivan, "left")  # what we last knew
        member(ada, "joined")
        member(lena, "joined")
        member(wendy, "joined")
    async with app.ctx.transaction() as session:
        wendy_row = await users.upsert(session, wendy, now, first_name="Wendy", wrote_to_bot=False)
        wendy_row.is_whitelisted = True

    report = await sync_members(app.ctx, app.gateway, bot_id=world.bot_id)
    (chat,) = report.chats
    assert chat.problem is None and chat.errors == []
    assert chat.checked == 6
    assert [s.user_id for s in chat.intruders] == [ivan]
    assert [s.user_id for s in chat.staff_without_access] == [ada]
    assert {s.user_id: s.status for s in chat.missing} == {lena: "left", GHOST: "unknown"}
    assert chat.with_access_in == 2  # Paula (paid) and Wendy (whitelisted)
    assert chat.statuses == {"member": 3, "administrator": 1, "left": 1, "unknown": 1}
    assert chat.queued == []
    async with app.db.sessions() as s:
        states = {m.user_id: (m.state, m.source) for m in (await s.scalars(select(Membership))).all()}
        assert (await s.scalars(select(OutboxJob).where(OutboxJob.kind == "kick"))).all() == []
    assert states[ivan] == ("joined", "sync")  # records follow what Telegram says
    assert states[lena][0] == "left" and states[paula] == ("joined", "invite")
    assert GHOST not in states  # nothing known, nothing recorded

    applied = await sync_members(app.ctx, app.gateway, apply=True, bot_id=world.bot_id)
    assert [s.user_id for s in applied.chats[0].queued] == [ivan]

    async def kick_done() -> bool:
        async with app.db.sessions() as s:
            job = (await s.scalars(select(OutboxJob).where(OutboxJob.kind == "kick"))).one()
        assert job.key == f"sync:{group}:{ivan}:{now.date().isoformat()}"
        assert job.payload == {"chat_id": group, "user_id": ivan, "guard": True}
        return job.state == "done"

    await wait_for_async(kick_done)
    await wait_for(lambda: sb.member_status(group, ivan) == "left", timeout=10)
    assert sb.member_status(group, paula) == "member"
    assert sb.member_status(group, wendy) == "member"
    assert sb.member_status(group, ada) == "administrator"

    # A second pass finds nothing more to do.
    again = await sync_members(app.ctx, app.gateway, apply=True, bot_id=world.bot_id)
    assert again.chats[0].intruders == [] and again.queued == 0


async def test_sync_refuses_a_chat_the_bot_cannot_see(world: World) -> None:
    other = world.sandbox.add_group("Elsewhere", owner_id=world.sandbox.add_user("Someone"))
    app = await world.start(group_id=other, workers=False, bot=False)
    report = await sync_members(app.ctx, app.gateway, apply=True, bot_id=world.bot_id)
    assert report.chats[0].problem is not None and report.queued == 0


async def test_lookups_do_not_wait_on_the_groups_message_limit() -> None:
    """20 messages a minute per group is a sending limit: 40 lookups must not take two minutes."""
    from types import SimpleNamespace

    from subbot.telegram.gateway import TelegramGateway
    from subbot.telegram.limiter import Limits, RateLimiter

    class FakeBot:
        async def get_chat_member(self, chat_id: int, user_id: int) -> object:
            return SimpleNamespace(status="member", user=SimpleNamespace(first_name="x", last_name=None))

    limiter = RateLimiter(Limits(global_per_second=1000, global_burst=1000))
    gateway = TelegramGateway(FakeBot(), limiter)  # type: ignore[arg-type]
    for user_id in range(1, 41):
        assert getattr(await gateway.get_chat_member(-100123, user_id), "status", "") == "member"
    assert gateway.calls == 40
    assert -100123 not in limiter._chats  # the group's bucket was never used
