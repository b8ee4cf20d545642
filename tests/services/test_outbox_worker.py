from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from subbot.domain.clock import ManualClock
from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.store.models import OutboxJob, User
from subbot.telegram.errors import GatewayError
from subbot.workers.outbox import LEASE, OutboxWorker


async def _enqueue(ctx: ServiceContext, n: int, kind: str = "note") -> None:
    async with ctx.transaction() as s:
        for i in range(n):
            await outbox.enqueue(s, kind, f"{kind}:{i}", {"i": i, "user_id": 1001}, ctx.clock.now())


async def _jobs(ctx: ServiceContext) -> list[OutboxJob]:
    async with ctx.db.sessions() as s:
        return list((await s.scalars(select(OutboxJob).order_by(OutboxJob.id))).all())


async def test_same_key_is_queued_once(ctx: ServiceContext) -> None:
    async with ctx.transaction() as s:
        assert await outbox.enqueue(s, "note", "k", {}, ctx.clock.now()) is True
        assert await outbox.enqueue(s, "note", "k", {"other": 1}, ctx.clock.now()) is False
    assert len(await _jobs(ctx)) == 1


async def test_competing_workers_perform_each_job_once(ctx: ServiceContext) -> None:
    await _enqueue(ctx, 40)
    seen: Counter[int] = Counter()

    async def note(p: dict[str, Any]) -> None:
        seen[int(p["i"])] += 1
        await asyncio.sleep(0)

    workers = [OutboxWorker(ctx, {"note": note}, batch=40) for _ in range(3)]
    await asyncio.gather(*(w.run_once() for w in workers))
    assert seen == Counter(range(40))
    assert {j.state for j in await _jobs(ctx)} == {"done"}


async def test_transient_error_backs_off_then_succeeds(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    await _enqueue(ctx, 1)
    calls: list[int] = []

    async def flaky(p: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise GatewayError("rate limited", permanent=False, retry_after=7)

    worker = OutboxWorker(ctx, {"note": flaky})
    assert await worker.run_once() == 1
    (job,) = await _jobs(ctx)
    assert (job.state, job.attempts, job.last_error) == ("pending", 1, "rate limited")
    assert job.run_at == ctx.clock.now() + timedelta(seconds=7)
    assert await worker.run_once() == 0  # not due yet: retry_after is honoured
    ctx.clock.advance(timedelta(seconds=7))
    assert await worker.run_once() == 1
    assert (await _jobs(ctx))[0].state == "done" and len(calls) == 2


async def test_blocked_member_is_marked_and_does_not_stall_others(ctx: ServiceContext) -> None:
    await _enqueue(ctx, 3)
    done: list[int] = []

    async def note(p: dict[str, Any]) -> None:
        if p["i"] == 0:
            raise GatewayError("Forbidden: bot was blocked by the user", permanent=True)
        done.append(int(p["i"]))

    await OutboxWorker(ctx, {"note": note}).run_once()
    states = [j.state for j in await _jobs(ctx)]
    assert states == ["dead", "done", "done"] and sorted(done) == [1, 2]
    async with ctx.db.sessions() as s:
        user = await s.get(User, 1001)
    assert user is not None and user.blocked_bot_at is not None


async def test_job_of_a_crashed_worker_is_taken_over_after_its_lease(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    await _enqueue(ctx, 1)
    async with ctx.db.write() as s:
        (job_id,) = await outbox.due_ids(s, ctx.clock.now(), 10)
        assert await outbox.claim(s, job_id, "dead-worker", ctx.clock.now(), LEASE)
    ran: list[int] = []

    async def note(p: dict[str, Any]) -> None:
        ran.append(1)

    worker = OutboxWorker(ctx, {"note": note})
    assert await worker.run_once() == 0
    ctx.clock.advance(LEASE + timedelta(seconds=1))
    assert await worker.run_once() == 1
    assert ran == [1] and (await _jobs(ctx))[0].state == "done"


async def test_handler_bug_does_not_kill_worker_and_gives_up_after_max_attempts(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    async with ctx.transaction() as s:
        await outbox.enqueue(s, "note", "bug", {}, ctx.clock.now(), max_attempts=2)

    async def buggy(p: dict[str, Any]) -> None:
        raise KeyError("boom")

    worker = OutboxWorker(ctx, {"note": buggy})
    await worker.run_once()
    ctx.clock.advance(timedelta(hours=2))
    await worker.run_once()
    (job,) = await _jobs(ctx)
    assert (job.state, job.attempts) == ("dead", 2) and "KeyError" in (job.last_error or "")
