"""Token buckets matching Telegram's limits: global, per private chat, per group."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    updated: float
    blocked_until: float = 0.0

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 = take it now)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(frozen=True)
class Limits:
    # Just under Telegram's ~30/s, with a small burst: running exactly at its rate earns odd 429s.
    global_per_second: float = 29.0
    global_burst: float = 5.0
    private_per_second: float = 1.0
    private_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 5.0
    enabled: bool = True


class RateLimiter:
    """``await acquire(chat_id)`` returns when a call to that chat fits every bucket."""

    def __init__(self, limits: Limits, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._now = monotonic
        self._global = Bucket(limits.global_per_second, limits.global_burst, limits.global_burst, monotonic())
        self._chats: dict[int, Bucket] = {}
        self._lock = asyncio.Lock()

    def _chat_bucket(self, chat_id: int) -> Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if chat_id < 0:
                rate, burst = self.limits.group_per_minute / 60.0, self.limits.group_burst
            else:
                rate, burst = self.limits.private_per_second, self.limits.private_burst
            bucket = Bucket(rate, burst, burst, self._now())
            if len(self._chats) > 100_000:  # forget idle chats; a full bucket is the same as a new one
                self._chats.clear()
            self._chats[chat_id] = bucket
        return bucket

    async def acquire(self, chat_id: int | None, *, counts_for_chat: bool = True) -> None:
        if not self.limits.enabled:
            return
        async with self._lock:
            while True:
                now = self._now()
                buckets = [self._global]
                if chat_id is not None and counts_for_chat:
                    buckets.append(self._chat_bucket(chat_id))
                wait = max(b.wait_time(now) for b in buckets)
                if wait <= 0:
                    for b in buckets:
                        b.take()
                    return
                await asyncio.sleep(wait)

    def penalise(self, chat_id: int | None, retry_after: float) -> None:
        """Telegram said 429: nothing more goes to that chat (or anywhere) until retry_after passes."""
        until = self._now() + retry_after
        target = self._global if chat_id is None else self._chat_bucket(chat_id)
        target.blocked_until = max(target.blocked_until, until)
