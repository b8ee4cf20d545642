"""The outbox worker: claims due jobs, performs them, retries with back-off, never stalls on one member."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta
from typing import Any

from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.telegram.errors import GatewayError
from subbot.workers.jobs import Handler, mark_blocked

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at one hour."""
    return timedelta(seconds=min(3600, 5 * 2 ** max(0, attempt - 1)))


class OutboxWorker:
    def __init__(
        self,
        ctx: ServiceContext,
        handlers: dict[str, Handler],
        *,
        concurrency: int = 4,
        batch: int | None = None,
        idle_poll: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self.concurrency = concurrency
        # A small batch per pass (twice the concurrency) leaves work for the other instances to claim.
        self.batch = batch or concurrency * 2
        self.idle_poll = idle_poll
        self.processed = 0
        self._stop = asyncio.Event()

    async def run_once(self) -> int:
        """Claim and perform what is due now; returns how many jobs were attempted."""
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as session:
            claimed = await outbox.claim_batch(session, self.name, now, LEASE, self.batch)
        sem = asyncio.Semaphore(self.concurrency)

        async def one(job: outbox.Claimed) -> None:
            async with sem:
                await self._perform(job)

        await asyncio.gather(*(one(j) for j in claimed))
        return len(claimed)

    async def _perform(self, job: outbox.Claimed) -> None:
        handler = self.handlers.get(job.kind)
        state, error, retry_at = "done", None, None
        try:
            if handler is None:
                raise GatewayError(f"no handler for job kind {job.kind!r}", permanent=True)
            await handler(dict(job.payload))
        except GatewayError as exc:
            error = exc.reason
            if exc.permanent or job.attempts >= job.max_attempts:
                state = "dead"
                await self._on_permanent(job.payload, exc)
            else:
                state = "pending"
                delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(job.attempts)
                retry_at = self.ctx.clock.now() + delay
        except Exception as exc:  # a bug in a handler must not kill the worker; the job is retried
            log.exception("outbox job %s (%s) failed", job.id, job.kind)
            error = f"{exc.__class__.__name__}: {exc}"
            state = "dead" if job.attempts >= job.max_attempts else "pending"
            retry_at = self.ctx.clock.now() + backoff(job.attempts)
        async with self.ctx.db.write() as session:
            await outbox.finish(
                session, job.id, self.name, self.ctx.clock.now(), state=state, error=error, retry_at=retry_at
            )
        self.processed += 1
        if state != "done":
            log.warning("outbox job %s (%s) -> %s: %s", job.id, job.kind, state, error)

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
