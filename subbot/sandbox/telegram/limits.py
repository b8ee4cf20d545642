"""Rate limits (token buckets, Telegram-like 429s) and fault injection."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .core import ApiError

SEND_METHODS = frozenset(
    m.lower()
    for m in (
        "sendMessage",
        "sendInvoice",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAnimation",
        "sendAudio",
        "sendVoice",
        "sendSticker",
        "sendMediaGroup",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    )
)
MEMBER_METHODS = frozenset(
    m.lower()
    for m in (
        "banChatMember",
        "unbanChatMember",
        "restrictChatMember",
        "promoteChatMember",
        "createChatInviteLink",
        "editChatInviteLink",
        "revokeChatInviteLink",
        "exportChatInviteLink",
        "createChatSubscriptionInviteLink",
        "approveChatJoinRequest",
        "declineChatJoinRequest",
    )
)
STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class RateLimits:
    """Telegram-like limits; off unless ``enabled``."""

    enabled: bool = False
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    global_per_second: float = 30.0
    global_burst: int = 30
    per_group_per_minute: float = 20.0

    def update(self, values: dict[str, Any]) -> None:
        """Set fields from a dict (control API); raises ValueError on bad names or values."""
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown limit {key!r}")
            if key == "enabled":
                if not isinstance(value, bool):
                    raise ValueError("enabled must be a boolean")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{key} must be a positive number")
            elif key.endswith("burst"):
                value = int(value)
            setattr(self, key, value)


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float

    def wait_needed(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Buckets per bot (global), per (bot, chat) and per (bot, group) for limited methods."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[tuple[Any, ...], TokenBucket] = {}

    def _bucket(self, key: tuple[Any, ...], rate: float, burst: float, now: float) -> TokenBucket:
        b = self._buckets.get(key)
        if b is None or b.rate != rate or b.capacity != burst:
            b = TokenBucket(rate, burst, burst, now)
            self._buckets[key] = b
        return b

    def check(self, bot_id: int, method: str, chat_id: Any) -> None:
        """Consume a token for this call or raise a 429 :class:`ApiError`."""
        lim = self.limits
        if not lim.enabled or method not in SEND_METHODS | MEMBER_METHODS:
            return
        now = self.clock()
        buckets = [self._bucket(("global", bot_id), lim.global_per_second, lim.global_burst, now)]
        # Telegram's per-chat (about 1/s) and per-group (about 20/min) limits are about MESSAGES; member
        # management and invite links are bounded by the bot's overall rate only.
        if chat_id is not None and method in SEND_METHODS:
            key = str(chat_id)
            buckets.append(
                self._bucket(("chat", bot_id, key), lim.per_chat_per_second, lim.per_chat_burst, now)
            )
            if key.startswith("-") or key.startswith("@"):
                per_min = lim.per_group_per_minute
                buckets.append(self._bucket(("group", bot_id, key), per_min / 60.0, max(1.0, per_min), now))
        wait = max(b.wait_needed(now) for b in buckets)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        for b in buckets:
            b.tokens -= 1

    def reset(self) -> None:
        self._buckets.clear()


@dataclass
class _Rule:
    kind: str  # "fail" | "429" | "delay"
    remaining: int | None  # None = until cleared
    methods: frozenset[str] | None
    status: int = 500
    retry_after: int = 1
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "methods": sorted(self.methods) if self.methods else None,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
        }


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.lower() for m in methods)


@dataclass
class FaultInjector:
    """Make the next calls fail, get rate limited or answer slowly."""

    rules: list[_Rule] = field(default_factory=list)

    def fail_next(self, n: int = 1, status: int = 500, methods: Iterable[str] | None = None) -> None:
        if status not in STATUS_TEXT:
            raise ValueError(f"status must be one of {sorted(STATUS_TEXT)}")
        if n < 1:
            raise ValueError("n must be >= 1")
        self.rules.append(_Rule("fail", n, _methods(methods), status=status))

    def rate_limit_next(self, n: int = 1, retry_after: int = 1, methods: Iterable[str] | None = None) -> None:
        if n < 1 or retry_after < 0:
            raise ValueError("n must be >= 1 and retry_after >= 0")
        self.rules.append(_Rule("429", n, _methods(methods), retry_after=retry_after))

    def delay(self, seconds: float, methods: Iterable[str] | None = None) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.rules.append(_Rule("delay", None, _methods(methods), seconds=seconds))

    def clear(self) -> None:
        self.rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self.rules]

    def take(self, method: str) -> tuple[float, ApiError | None]:
        """For a call of ``method``: (seconds to delay, error to answer instead or None)."""
        delay = sum(r.seconds for r in self.rules if r.kind == "delay" and r.matches(method))
        for rule in self.rules:
            if rule.kind == "delay" or not rule.matches(method):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self.rules.remove(rule)
            if rule.kind == "fail":
                return delay, ApiError(rule.status, STATUS_TEXT[rule.status])
            retry = rule.retry_after
            return delay, ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        return delay, None
