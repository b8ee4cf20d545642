"""Fixtures for the Telegram sandbox tests: a served sandbox, a real aiogram Bot, raw httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update

from subbot.sandbox.telegram import TelegramSandbox

TOKEN = "123456:TEST-token_abc"


class FastSession(AiohttpSession):
    """aiogram's session without the 250 ms sleep in close()."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(base_url: str, token: str = TOKEN) -> Bot:
    return Bot(token, session=FastSession(api=TelegramAPIServer.from_base(base_url)))


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sb(clock: Clock) -> TelegramSandbox:
    sandbox = TelegramSandbox(now=clock)
    sandbox.add_bot(TOKEN)
    sandbox.webhook_backoff = (0.05, 0.5)
    return sandbox


@pytest.fixture
async def base_url(sb: TelegramSandbox) -> AsyncIterator[str]:
    async with sb.serve() as url:
        yield url
    bugs = [v for v in sb.violations if v.startswith("sandbox bug")]
    assert not bugs, bugs


@pytest.fixture
async def bot(base_url: str) -> AsyncIterator[Bot]:
    b = make_bot(base_url)
    yield b
    await b.session.close()


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


class Poller:
    """Reads updates with real long polling, keeping the offset."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.offset: int | None = None

    async def poll(self, timeout: int = 2, allowed: list[str] | None = None) -> list[Update]:
        ups = await self.bot.get_updates(offset=self.offset, timeout=timeout, allowed_updates=allowed)
        if ups:
            self.offset = ups[-1].update_id + 1
        return ups

    async def until(self, pred: Callable[[Update], Any], rounds: int = 5, **kw: Any) -> Update:
        for _ in range(rounds):
            for up in await self.poll(**kw):
                if pred(up):
                    return up
        raise AssertionError("expected update did not arrive")


@pytest.fixture
def poller(bot: Bot) -> Poller:
    return Poller(bot)


@pytest.fixture
def user(sb: TelegramSandbox) -> int:
    return sb.add_user("Alice", username="alice")


@pytest.fixture
def group(sb: TelegramSandbox) -> int:
    owner = sb.add_user("Olga", username="owner")
    gid = sb.add_group("Paid Club", owner_id=owner)
    sb.set_admin(gid, sb.world.tokens[TOKEN].id)
    return gid
