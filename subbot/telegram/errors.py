"""Bot API errors classified as permanent (never retry) or transient (retry later)."""

from __future__ import annotations

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)


class GatewayError(Exception):
    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after

    @property
    def blocked_by_user(self) -> bool:
        text = self.reason.lower()
        return "blocked by the user" in text or "user is deactivated" in text or "can't initiate" in text


def classify(exc: Exception) -> GatewayError:
    if isinstance(exc, TelegramRetryAfter):
        return GatewayError(
            f"rate limited: retry after {exc.retry_after}s", permanent=False, retry_after=exc.retry_after
        )
    if isinstance(exc, TelegramForbiddenError | TelegramUnauthorizedError | TelegramNotFound):
        return GatewayError(exc.message, permanent=True)
    if isinstance(exc, TelegramBadRequest):  # 400: the same call will fail the same way
        return GatewayError(exc.message, permanent=True)
    if isinstance(exc, TelegramConflictError | TelegramServerError | TelegramNetworkError):
        return GatewayError(str(exc), permanent=False)
    if isinstance(exc, TelegramAPIError):
        return GatewayError(exc.message, permanent=False)
    if isinstance(exc, TimeoutError | OSError):
        return GatewayError(f"network: {exc.__class__.__name__}", permanent=False)
    raise exc
