from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from subbot.domain.clock import ManualClock
from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.store.models import OutboxJob, User
from subbot.store.outbox import Claimed
from subbot.telegram.errors import GatewayError
from subbot.workers import outbox as outbox_worker
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


async def test_jobs_finished_before_a_cancellation_are_recorded_done(ctx: ServiceContext) -> None:
    """Successes are written once per batch; a stop in the middle still records the ones that finished."""
    await _enqueue(ctx, 3)
    release = asyncio.Event()

    async def note(p: dict[str, Any]) -> None:
        if p["i"] == 2:
            await release.wait()  # still in flight when the worker is cancelled

    worker = OutboxWorker(ctx, {"note": note}, concurrency=3)
    finished: list[int] = []
    two_finished = asyncio.Event()
    original = worker._one

    async def tracking(job: Claimed, *args: Any) -> None:
        await original(job, *args)
        finished.append(job.id)
        if len(finished) == 2:
            two_finished.set()

    worker._one = tracking  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(two_finished.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [j.state for j in await _jobs(ctx)] == ["done", "done", "running"]  # the third: its lease runs out


class _Batched:
    """A batch handler that records what it was given and can fail its own bookkeeping."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def perform_batch(
        self, jobs: Sequence[Claimed], slots: asyncio.Semaphore, outcomes: dict[int, BaseException | None]
    ) -> None:
        self.batches.append([int(j.payload["i"]) for j in jobs])
        if self.fail:
            raise RuntimeError("database went away")
        for job in jobs:
            outcomes[job.id] = None


async def test_a_batch_handler_gets_its_jobs_together_and_others_run_alone(ctx: ServiceContext) -> None:
    await _enqueue(ctx, 3, kind="bulk")
    await _enqueue(ctx, 2, kind="note")
    seen: list[int] = []

    async def note(p: dict[str, Any]) -> None:
        seen.append(int(p["i"]))

    batched = _Batched()
    assert await OutboxWorker(ctx, {"bulk": batched, "note": note}, batch=10).run_once() == 5
    assert batched.batches == [[0, 1, 2]] and sorted(seen) == [0, 1]
    assert {j.state for j in await _jobs(ctx)} == {"done"}


async def test_a_failing_batch_is_retried_with_back_off(ctx: ServiceContext) -> None:
    await _enqueue(ctx, 2, kind="bulk")
    await OutboxWorker(ctx, {"bulk": _Batched(fail=True)}).run_once()
    jobs = await _jobs(ctx)
    assert [(j.state, j.attempts) for j in jobs] == [("pending", 1)] * 2
    assert all("database went away" in (j.last_error or "") for j in jobs)
    assert all(j.run_at == ctx.clock.now() + timedelta(seconds=5) for j in jobs)


async def test_claims_grow_while_there_is_a_backlog_and_shrink_after(ctx: ServiceContext) -> None:
    await _enqueue(ctx, 30)
    sizes: list[int] = []

    async def note(p: dict[str, Any]) -> None:
        pass

    worker = OutboxWorker(ctx, {"note": note}, concurrency=1)  # batch 2, doubling while full (up to 32)
    while done := await worker.run_once():
        sizes.append(done)
    assert sizes == [2, 4, 8, 16] and worker._claim_size == worker.batch == 2


async def test_a_batch_runs_its_lower_priority_numbers_first(ctx: ServiceContext) -> None:
    async with ctx.transaction() as s:
        for i, priority in enumerate((5, 0, 5, 0)):
            await outbox.enqueue(
                s, "note", f"p{i}", {"i": i, "p": priority}, ctx.clock.now(), priority=priority
            )
    events: list[tuple[str, int]] = []

    async def note(p: dict[str, Any]) -> None:
        events.append(("start", int(p["p"])))
        await asyncio.sleep(0)
        events.append(("end", int(p["p"])))

    assert await OutboxWorker(ctx, {"note": note}, concurrency=4, batch=4).run_once() == 4
    last_urgent_end = max(n for n, e in enumerate(events) if e == ("end", 0))
    first_later_start = min(n for n, e in enumerate(events) if e == ("start", 5))
    assert last_urgent_end < first_later_start


async def test_a_long_batch_records_what_it_settled_as_it_goes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash in a slow (rate-limited) batch redoes only what was settled since the last flush."""
    monkeypatch.setattr(outbox_worker, "FLUSH_SECONDS", 0.05)
    await _enqueue(ctx, 3)
    release = asyncio.Event()

    async def note(p: dict[str, Any]) -> None:
        if p["i"] == 2:
            await release.wait()

    task = asyncio.create_task(OutboxWorker(ctx, {"note": note}, concurrency=3).run_once())

    async def two_recorded() -> None:
        while [j.state for j in await _jobs(ctx)] != ["done", "done", "running"]:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(two_recorded(), timeout=10)  # recorded while the third still runs
    release.set()
    assert await asyncio.wait_for(task, timeout=10) == 3
    assert [j.state for j in await _jobs(ctx)] == ["done"] * 3
