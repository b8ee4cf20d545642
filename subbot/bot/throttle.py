"""Per-user throttling: a token bucket per member; a flood is dropped before it reaches any handler.

Each member may send THROTTLE_BURST updates at once and THROTTLE_RATE updates per second after that.
An update over the limit is dropped (counted in ``subbot_throttled_total``); the member is told to slow
down at most once per refill window (the time the bucket takes to fill up again).  Admins, payments
(``successful_payment``; pre-checkout queries never pass here) and group traffic are never throttled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from subbot.metrics import THROTTLED

log = logging.getLogger(__name__)

SLOW_DOWN = "You're sending messages too fast. Please wait a few seconds and try again."
#: Buckets kept before idle (full) ones are forgotten.
MAX_TRACKED = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned_at: float | None = None


class TokenBuckets:
    """The accounting alone, with an injectable clock (seconds, monotonic)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}

    @property
    def window(self) -> float:
        """Seconds an empty bucket takes to fill up again: the slow-down notice is sent once per window."""
        return self.burst / self.rate

    def _bucket(self, key: int, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            return bucket
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        return bucket

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for key in idle:
            del self._buckets[key]

    def allow(self, key: int) -> bool:
        """Take one token; False when the member is over the limit."""
        now = self.clock()
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def should_warn(self, key: int) -> bool:
        """True for the first dropped update of a window (the member hears about it once)."""
        now = self.clock()
        bucket = self._bucket(key, now)
        if bucket.warned_at is not None and now - bucket.warned_at < self.window:
            return False
        bucket.warned_at = now
        return True

    def __len__(self) -> int:
        return len(self._buckets)


class ThrottleMiddleware(BaseMiddleware):
    """Outer middleware for ``message`` and ``callback_query`` observers."""

    def __init__(
        self,
        rate: float,
        burst: int,
        admin_ids: frozenset[int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buckets = TokenBuckets(rate, burst, clock)
        self.admin_ids = admin_ids

    def _exempt(self, event: TelegramObject, user_id: int) -> bool:
        if user_id in self.admin_ids:
            return True
        if isinstance(event, Message):
            # Money already taken must always be applied; group traffic is not a conversation with us.
            return event.successful_payment is not None or event.chat.type != "private"
        return not isinstance(event, CallbackQuery)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = getattr(event, "from_user", None)
        if user is None or self._exempt(event, user.id) or self.buckets.allow(user.id):
            return await handler(event, data)
        kind = "callback_query" if isinstance(event, CallbackQuery) else "message"
        THROTTLED.labels(kind).inc()
        if self.buckets.should_warn(user.id):
            log.info("throttling user %s (over %s updates/s)", user.id, self.buckets.rate)
            await self._tell(event, data)
        return None

    async def _tell(self, event: TelegramObject, data: dict[str, Any]) -> None:
        try:
            if isinstance(event, CallbackQuery):
                await event.answer(SLOW_DOWN[:200])
            elif isinstance(event, Message):
                gateway = data.get("gateway")
                if gateway is not None:
                    await gateway.send_message(event.chat.id, SLOW_DOWN, interactive=True)
        except Exception as exc:  # the notice is a courtesy; never fail the update over it
            log.info("could not send the slow-down notice: %s", exc.__class__.__name__)
