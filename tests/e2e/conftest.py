"""A world for journeys: the Telegram sandbox over real HTTP, subbot's real process pieces, both databases."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from subbot.app import SubbotApp
from subbot.config import load_settings
from subbot.domain.clock import ManualClock
from subbot.runner import serve
from subbot.sandbox.telegram import TelegramSandbox
from subbot.sandbox.telegram.testing import wait_for
from subbot.store.migrate import upgrade
from subbot.telegram.limiter import Limits

TOKEN = "777001:e2e-sandbox-token-not-a-secret-abcdef"


@dataclass
class World:
    sandbox: TelegramSandbox
    url: str
    group: int
    bot_id: int
    clock: ManualClock
    db_url: str
    tmp: Path
    apps: list[SubbotApp]

    def settings(self, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "_env_file": None,
            "bot_token": TOKEN,
            "group_id": self.group,
            "telegram_api_url": self.url,
            "database_url": self.db_url,
            "lock_dir": self.tmp,
            "log_dir": self.tmp / "logs",
        }
        values.update(overrides)
        return load_settings(**values)

    async def start(self, *, workers: bool = True, bot: bool = True, **overrides: Any) -> SubbotApp:
        app = SubbotApp(self.settings(**overrides), clock=self.clock, limits=Limits(enabled=False))
        await upgrade(app.db)
        await app.prepare()
        if workers:
            await app.start_workers()
        if bot:
            await app.start_bot()
        self.apps.append(app)
        return app

    @contextlib.asynccontextmanager
    async def serving(
        self, *, webhook: bool = False, **overrides: Any
    ) -> AsyncIterator[tuple[SubbotApp, str]]:
        """The real process (HTTP server, bot, workers, sweeps) on a free port, as `subbot run` runs it."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if webhook:
            overrides["public_url"] = base
        settings = self.settings(port=port, **overrides)
        app = SubbotApp(settings, clock=self.clock, limits=Limits(enabled=False))
        await upgrade(app.db)
        ready = asyncio.Event()
        task = asyncio.create_task(serve(app, "127.0.0.1", port, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            await task  # raises the start-up error
            raise RuntimeError("subbot did not start")
        try:
            yield app, base
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self, app: SubbotApp) -> None:
        await app.stop()
        self.apps.remove(app)

    def user(self, name: str) -> int:
        return self.sandbox.add_user(name, username=name.lower())

    def seen(self, user_id: int) -> int:
        """How many messages the user has received so far (pass to ``reply(after=...)``)."""
        return len(self.sandbox.messages_to(user_id))

    async def reply(
        self, user_id: int, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0, after: int = 0
    ) -> dict[str, Any]:
        """The first message the bot sent to the user after the ``after``-th one that matches."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [m for m in self.sandbox.messages_to(user_id)[after:] if predicate(m)]
            return bool(found)

        await wait_for(check, timeout=timeout)
        return found[0]


async def wait_for_async(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll an async condition (a database query) until true; fails the test after ``timeout``."""

    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` different free ports: each socket stays bound until all are chosen (``free_port()`` three
    times in a row can hand out the same port twice, and two servers then race for it)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def text_has(fragment: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: fragment in (m.get("text") or "")


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock()
    sandbox = TelegramSandbox(now=lambda: clock.now().timestamp())
    bot_id = sandbox.add_bot(TOKEN, username="subbot_test_bot")
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Members", owner_id=owner)
    sandbox.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    async with sandbox.serve() as url:
        w = World(sandbox, url, group, bot_id, clock, db_url, tmp_path, [])
        try:
            yield w
        finally:
            for app in list(w.apps):
                await w.stop(app)
    # Every call our bot made must have been valid against the Bot API spec.
    assert sandbox.violations == [], sandbox.violations
