"""The outbox worker: claims due jobs, performs them, retries with back-off, never stalls on one member."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.telegram.errors import GatewayError
from subbot.workers.jobs import AnyHandler, BatchHandler, Handler, mark_blocked

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
FLUSH_SECONDS = 1.0  # a batch still running records what it settled at this interval


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at one hour."""
    return timedelta(seconds=min(3600, 5 * 2 ** max(0, attempt - 1)))


class OutboxWorker:
    def __init__(
        self,
        ctx: ServiceContext,
        handlers: dict[str, AnyHandler],
        *,
        concurrency: int = 4,
        batch: int | None = None,
        idle_poll: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self.concurrency = concurrency
        # A small batch per pass (twice the concurrency) leaves work for the other instances to claim;
        # while passes come back full (a backlog), each claims twice as many, up to sixteen times that, so
        # the per-pass bookkeeping (claim, guards, finish) is shared by more jobs.
        self.batch = batch or concurrency * 2
        self.max_batch = self.batch * 16
        self._claim_size = self.batch
        self.idle_poll = idle_poll
        self.processed = 0
        self._stop = asyncio.Event()

    async def run_once(self) -> int:
        """Claim and perform what is due now; returns how many jobs were attempted.

        Settled jobs are recorded together, the successes in one statement: when the batch ends (or is
        cancelled: what finished is still recorded), and every ``FLUSH_SECONDS`` while a long batch
        (rate-limited sends) runs. A crash before that record means those jobs run again after the
        lease, as a crash between a job and its own commit always did; the flush keeps that window short.
        """
        now = self.ctx.clock.now()
        size = self._claim_size
        async with self.ctx.db.write() as session:
            claimed = await outbox.claim_batch(session, self.name, now, LEASE, size)
        self._claim_size = min(size * 2, self.max_batch) if len(claimed) == size else self.batch
        if not claimed:
            return 0
        outcomes: dict[int, BaseException | None] = {}
        recorded: set[int] = set()
        slots = asyncio.Semaphore(self.concurrency)
        batch_over = asyncio.Event()
        flusher = asyncio.create_task(self._flush_while(batch_over, claimed, outcomes, recorded))
        try:
            # Lower priority numbers first, even inside one batch: a claim that reaches past the last
            # removal into the expiry notices must not let the notices take the removals' sending tokens.
            for level in sorted({job.priority for job in claimed}):
                group = [job for job in claimed if job.priority == level]
                await asyncio.gather(*self._performers(group, slots, outcomes))
        finally:
            batch_over.set()
            await asyncio.shield(self._wrap_up(flusher, claimed, outcomes, recorded))
        return len(claimed)

    async def _flush_while(
        self,
        batch_over: asyncio.Event,
        claimed: Sequence[outbox.Claimed],
        outcomes: dict[int, BaseException | None],
        recorded: set[int],
    ) -> None:
        while True:
            try:
                await asyncio.wait_for(batch_over.wait(), FLUSH_SECONDS)
                return
            except TimeoutError:
                await self._finish(claimed, outcomes, recorded)

    async def _wrap_up(
        self,
        flusher: asyncio.Task[None],
        claimed: Sequence[outbox.Claimed],
        outcomes: dict[int, BaseException | None],
        recorded: set[int],
    ) -> None:
        try:
            await flusher
        finally:
            await self._finish(claimed, outcomes, recorded)

    def _performers(
        self,
        claimed: Sequence[outbox.Claimed],
        slots: asyncio.Semaphore,
        outcomes: dict[int, BaseException | None],
    ) -> list[Awaitable[None]]:
        batches: dict[str, list[outbox.Claimed]] = {}
        singles: list[Awaitable[None]] = []
        for job in claimed:
            handler = self.handlers.get(job.kind)
            if hasattr(
                handler, "perform_batch"
            ):  # a BatchHandler (hasattr: isinstance on a Protocol is slow)
                batches.setdefault(job.kind, []).append(job)
            else:
                singles.append(self._one(job, handler, slots, outcomes))
        batched = [self._batch(jobs, slots, outcomes) for jobs in batches.values()]
        return [*batched, *singles]

    async def _one(
        self,
        job: outbox.Claimed,
        handler: Handler | None,
        slots: asyncio.Semaphore,
        outcomes: dict[int, BaseException | None],
    ) -> None:
        async with slots:
            try:
                if handler is None:
                    raise GatewayError(f"no handler for job kind {job.kind!r}", permanent=True)
                await handler(dict(job.payload))
            except Exception as exc:  # recorded per job; a bug in a handler must not kill the worker
                outcomes[job.id] = exc
            else:
                outcomes[job.id] = None

    async def _batch(
        self,
        jobs: Sequence[outbox.Claimed],
        slots: asyncio.Semaphore,
        outcomes: dict[int, BaseException | None],
    ) -> None:
        handler = cast(BatchHandler, self.handlers[jobs[0].kind])
        try:
            await handler.perform_batch(jobs, slots, outcomes)
        except Exception as exc:  # the batch's own bookkeeping failed: every job not yet settled is retried
            for job in jobs:
                outcomes.setdefault(job.id, exc)

    async def _finish(
        self,
        claimed: Sequence[outbox.Claimed],
        outcomes: dict[int, BaseException | None],
        recorded: set[int],
    ) -> None:
        """Record the jobs settled since the last record: successes in one statement, failures one by one."""
        now = self.ctx.clock.now()
        done: list[int] = []
        failed: list[tuple[outbox.Claimed, str, str, datetime | None]] = []
        for job in claimed:
            if job.id not in outcomes or job.id in recorded:
                continue  # still running (or interrupted: its lease runs out and it is taken again)
            exc = outcomes[job.id]
            if exc is None:
                done.append(job.id)
                continue
            state, error, retry_at = self._failure(job, exc, now)
            failed.append((job, state, error, retry_at))
            if isinstance(exc, GatewayError) and state == "dead":
                await self._on_permanent(job.payload, exc)
        if not done and not failed:
            return
        async with self.ctx.db.write() as session:
            await outbox.finish_done(session, done, self.name, now)
            for job, state, error, retry_at in failed:
                await outbox.finish(
                    session, job.id, self.name, now, state=state, error=error, retry_at=retry_at
                )
        recorded.update(done)
        recorded.update(job.id for job, *_ in failed)
        self.processed += len(done) + len(failed)
        for job, state, error, _ in failed:
            log.warning("outbox job %s (%s) -> %s: %s", job.id, job.kind, state, error)

    def _failure(
        self, job: outbox.Claimed, exc: BaseException, now: datetime
    ) -> tuple[str, str, datetime | None]:
        if isinstance(exc, GatewayError):
            if exc.permanent or job.attempts >= job.max_attempts:
                return "dead", exc.reason, None
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(job.attempts)
            return "pending", exc.reason, now + delay
        log.error("outbox job %s (%s) failed", job.id, job.kind, exc_info=exc)
        state = "dead" if job.attempts >= job.max_attempts else "pending"
        return state, f"{exc.__class__.__name__}: {exc}", now + backoff(job.attempts)

    async def _on_permanent(self, payload: dict[str, Any], exc: GatewayError) -> None:
        if exc.blocked_by_user:
            target = payload.get("user_id") or payload.get("chat_id")
            if isinstance(target, int) and target > 0:
                await mark_blocked(self.ctx, target)

    async def run(self) -> None:
        """Work until stopped; woken at once by local commits, polls for jobs of other instances."""
        while not self._stop.is_set():
            self.ctx.outbox_wakeup.clear()
            try:
                done = await self.run_once()
            except Exception:
                log.exception("outbox worker pass failed; retrying")
                done = 0
            if done:
                continue
            wakeup = asyncio.ensure_future(self.ctx.outbox_wakeup.wait())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({wakeup, stop}, timeout=self.idle_poll, return_when=asyncio.FIRST_COMPLETED)
            wakeup.cancel()
            stop.cancel()

    def stop(self) -> None:
        self._stop.set()
