"""Broadcast delivery: the process-wide pacer and the ``broadcast`` job handler that sends one copy.

Split from :mod:`subbot.services.broadcasts`, which re-exports every public name here. The job key
(``job_prefix``) and the failure reasons live here because the handler needs them; the lifecycle and
progress modules import them from here, never the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from subbot.services.context import ServiceContext
from subbot.store.models import Broadcast, OutboxJob, User
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

log = logging.getLogger("subbot.services.broadcasts")  # the logger name these records had before the split

CANCELLED_REASON = "broadcast cancelled"
BLOCKED_REASON = "bot was blocked by the user"  # recognised by GatewayError.blocked_by_user


def job_prefix(broadcast_id: int) -> str:
    return f"bcast:{broadcast_id}:"


# ------------------------------------------------------------------------------------------ pacing
class Pacer:
    """A token bucket of one token (strict spacing of 1/rate), shared by every sender of the process.

    Each caller reserves the next free slot synchronously, so concurrent senders are spaced without a lock
    (and nothing is bound to an event loop). Uses the monotonic clock: pacing is about real time.
    """

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self.interval = 1.0 / rate
        self._next = 0.0

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait for it."""
        now = self._now()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


PACER = Pacer(25.0)


def set_rate(rate: float) -> None:
    """Set the process-wide broadcast pace (BROADCAST_RATE), messages per second."""
    PACER.set_rate(rate)


# ---------------------------------------------------------------------------------------- delivery
async def _record_sent(ctx: ServiceContext, broadcast_id: int, user_id: int) -> None:
    """Mark the job ``done`` as soon as Telegram took the message (the worker does it again, harmlessly)."""
    try:
        async with ctx.transaction() as session:
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.key == f"{job_prefix(broadcast_id)}{user_id}", OutboxJob.state == "running")
                .values(state="done", updated_at=ctx.clock.now())
                .execution_options(synchronize_session=False)
            )
    except Exception:  # the worker's own finish records it too; never turn a sent message into a retry
        log.exception("could not record broadcast %s to %s as sent", broadcast_id, user_id)


async def deliver(ctx: ServiceContext, gateway: TelegramGateway, payload: dict[str, Any]) -> None:
    """The ``broadcast`` job: one member's copy, paced, skipped when the broadcast was cancelled."""
    broadcast_id, user_id = int(payload["broadcast_id"]), int(payload["user_id"])
    async with ctx.db.sessions() as session:
        b = await session.get(Broadcast, broadcast_id)
        user = await session.get(User, user_id)
    if b is None or b.status == "cancelled":
        raise GatewayError(CANCELLED_REASON, permanent=True)
    if user is None:
        raise GatewayError("no such member", permanent=True)
    if user.blocked_bot_at is not None:  # learnt since it was queued: counted as blocked, not sent
        raise GatewayError(BLOCKED_REASON, permanent=True)
    await PACER.wait()
    async with ctx.db.sessions() as session:  # cancelled while this copy waited for its turn?
        status = await session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))
    if status == "cancelled":
        raise GatewayError(CANCELLED_REASON, permanent=True)
    # Once the send starts, let it finish and be recorded even if the process is stopping meanwhile, so a
    # graceful stop never leaves a delivered message looking unsent (which would send it again).
    inflight = asyncio.ensure_future(_send_and_record(ctx, gateway, broadcast_id, user_id, b.text))
    try:
        await asyncio.shield(inflight)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await inflight
        raise


async def _send_and_record(
    ctx: ServiceContext, gateway: TelegramGateway, broadcast_id: int, user_id: int, text: str
) -> None:
    await gateway.send_message(user_id, text)
    await _record_sent(ctx, broadcast_id, user_id)
