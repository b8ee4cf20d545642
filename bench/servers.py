"""Server processes for the benchmarks: ``python -m bench.servers ROLE CONFIG_JSON``.

Roles:

* ``sandbox``: the Telegram sandbox (rate limits off) with the bots, a group and pre-started users;
* ``subbot``: subbot in webhook mode on a fresh, migrated SQLite file, run by ``subbot.runner.serve``
  exactly as ``subbot run`` does (production logging included);
* ``bare``: the baseline, a bare aiogram Dispatcher with one ``/start`` handler behind FastAPI + uvicorn.

Each writes its ready file (see :mod:`bench.procs`) once it accepts connections and stops when its stdin
is closed. With ``"profile": PATH`` in the config the whole process runs under cProfile (main thread
only: aiosqlite's worker thread is not seen), from the moment it is ready, and the stats are dumped
to PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import hmac
import json
import sys
from pathlib import Path
from typing import Any

import uvicorn
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import Message, Update
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.procs import stop_requested, write_ready

HOST = "127.0.0.1"
WEBHOOK_PATH = "/webhook/telegram"
#: Set by main() when the config asks for a profile; enabled once the server is ready (no start-up noise).
_profiler: cProfile.Profile | None = None


def ready(path: str, info: dict[str, Any]) -> None:
    write_ready(path, info)
    if _profiler is not None:
        _profiler.enable()


async def run_sandbox(cfg: dict[str, Any]) -> None:
    from subbot.sandbox.telegram import TelegramSandbox
    from subbot.sandbox.telegram.limits import RateLimits

    stop = await stop_requested()
    sandbox = TelegramSandbox(rate_limits=RateLimits(enabled=False))
    bots = {name: sandbox.add_bot(token, username=f"{name}_bench_bot") for name, token in cfg["bots"].items()}
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Members", owner_id=owner)
    for bot_id in bots.values():
        sandbox.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    users = [sandbox.add_user(f"User{n}", username=f"bench_user_{n}") for n in range(int(cfg["users"]))]
    for bot_id in bots.values():
        # What people.send_text records when a person writes to the bot: the bot may now answer them.
        sandbox.world.bots[bot_id].started_by.update(users)
    # The same treatment subbot.runner gives subbot: the seeded world (thousands of users) is frozen, so a
    # full collection in this helper (250-390 ms seen) does not stall the replies being measured.
    gc.collect()
    gc.freeze()
    async with sandbox.serve(HOST, 0) as url:
        ready(cfg["ready_file"], {"url": url, "group": group, "bots": bots, "users": users})
        await stop.wait()


async def run_subbot(cfg: dict[str, Any]) -> None:
    from subbot.app import SubbotApp
    from subbot.config import load_settings
    from subbot.logging_setup import configure_logging
    from subbot.runner import serve
    from subbot.store.migrate import upgrade
    from subbot.telegram.limiter import Limits

    stop = await stop_requested()
    tmp = Path(cfg["workdir"])
    port = int(cfg["port"])
    overrides: dict[str, Any] = {}
    if cfg.get("log_level"):
        overrides["log_level"] = cfg["log_level"]
    settings = load_settings(
        _env_file=None,
        bot_token=cfg["token"],
        group_id=cfg["group"],
        telegram_api_url=cfg["api_url"],
        database_url=f"sqlite+aiosqlite:///{tmp / 'subbot.db'}",
        public_url=f"http://{HOST}:{port}",
        lock_dir=tmp,
        log_dir=tmp / "subbot-logs",
        **overrides,
    )
    configure_logging(settings)
    app = SubbotApp(settings, limits=Limits(enabled=False))
    await upgrade(app.db)
    started = asyncio.Event()
    serving = asyncio.create_task(serve(app, HOST, port, started))
    ready_wait = asyncio.create_task(started.wait())
    await asyncio.wait({serving, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
    ready_wait.cancel()
    if serving.done():
        serving.result()  # raises the start-up error, if any
        raise RuntimeError("subbot stopped before it was ready")
    ready(cfg["ready_file"], {"url": f"http://{HOST}:{port}", "secret": settings.telegram_webhook_secret})
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def run_bare(cfg: dict[str, Any]) -> None:
    stop = await stop_requested()
    port = int(cfg["port"])
    secret = str(cfg["secret"]).encode()
    bot = Bot(cfg["token"], session=AiohttpSession(api=TelegramAPIServer.from_base(cfg["api_url"])))
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("hi")

    dp = Dispatcher()
    dp.include_router(router)
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @web.post(WEBHOOK_PATH)
    async def webhook(request: Request) -> JSONResponse:
        # The same secret check subbot does, so both servers do the same HTTP-level work.
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        if not hmac.compare_digest(given, secret):
            return JSONResponse({"ok": False}, status_code=401)
        update = Update.model_validate(json.loads(await request.body()), context={"bot": bot})
        await dp.feed_update(bot, update)
        return JSONResponse({"ok": True})

    # The same uvicorn settings as subbot.runner.serve.
    config = uvicorn.Config(web, host=HOST, port=port, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.05)
    if serving.done():
        serving.result()
        raise RuntimeError("the bare server stopped before it was ready")
    ready(cfg["ready_file"], {"url": f"http://{HOST}:{port}"})
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(serving, 5)
    await bot.session.close()


ROLES = {"sandbox": run_sandbox, "subbot": run_subbot, "bare": run_bare}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ROLES:
        print(f"usage: python -m bench.servers {{{','.join(ROLES)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    cfg: dict[str, Any] = json.loads(argv[1])
    # Plain asyncio.run, as `subbot run` does (no uvloop for the servers under test).
    global _profiler
    profile_path = str(cfg.get("profile") or "")
    if profile_path:
        _profiler = cProfile.Profile()
    try:
        asyncio.run(ROLES[argv[0]](cfg))
    finally:
        if _profiler is not None:
            _profiler.disable()
            _profiler.dump_stats(profile_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
