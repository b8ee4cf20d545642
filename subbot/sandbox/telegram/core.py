"""Shared plumbing for method implementations: errors, call context, registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import BotAccount
    from .state import World


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


def forbidden(text: str) -> ApiError:
    return ApiError(403, f"Forbidden: {text}")


@dataclass
class Ctx:
    """What a method implementation gets: the world and the calling bot."""

    world: World
    bot: BotAccount

    @property
    def now(self) -> int:
        return int(self.world.now())


Handler = Callable[[Ctx, dict[str, Any]], Awaitable[Any]]
REGISTRY: dict[str, Handler] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    """Register an implementation for one or more Bot API method names."""

    def deco(fn: Handler) -> Handler:
        for name in names:
            REGISTRY[name.lower()] = fn
        return fn

    return deco
