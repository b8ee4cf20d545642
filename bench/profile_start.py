"""In-process CPU cost of one ``/start``: subbot's dispatcher vs a bare aiogram one (not registered).

``python -m bench.profile_start [--n 1000] [--concurrency 1] [--repeat 1] [--only subbot|bare]
[--profile cprofile|pyinstrument]``; ``PROFILE_START_ABLATE=remember,keyboard`` drops those pieces (what-if).

The Telegram sandbox runs in a child process (as in ``bench webhook``); this process builds the bot
in-process and feeds ``Update`` objects straight to ``dispatcher.feed_update`` (no HTTP server), so the
CPU it reports is the dispatcher, handlers, database and the outgoing ``sendMessage`` alone:

* subbot: ``SubbotApp`` on a fresh migrated SQLite file, production logging, ``Limits(enabled=False)``;
* bare: a ``Dispatcher`` with one ``CommandStart`` handler doing ``message.answer("hi")``.

Every update comes from a new user (the insert path), as in the webhook benchmark. CPU is
``time.process_time`` (all threads, aiosqlite's included) and ``time.thread_time`` (the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import itertools
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import Message, Update

from bench.procs import Child
from bench.webhook_ingest import TOKENS, start_update

WARMUP = 200


async def _subbot(
    info: dict[str, Any], workdir: Path
) -> tuple[Dispatcher, Bot, Callable[[], Awaitable[None]]]:
    from subbot.app import SubbotApp
    from subbot.config import load_settings
    from subbot.logging_setup import configure_logging
    from subbot.store.migrate import upgrade
    from subbot.telegram.limiter import Limits

    settings = load_settings(
        _env_file=None,
        bot_token=TOKENS["subbot"],
        group_id=info["group"],
        telegram_api_url=info["url"],
        database_url=f"sqlite+aiosqlite:///{workdir / 'subbot.db'}",
        lock_dir=workdir,
        log_dir=workdir / "logs",
    )
    configure_logging(settings)
    app = SubbotApp(settings, limits=Limits(enabled=False))
    ablate = set(filter(None, os.environ.get("PROFILE_START_ABLATE", "").split(",")))
    if ablate:  # what-if measurements only: drop one piece of the /start path
        import subbot.bot.user as user_mod

        if "remember" in ablate:

            async def no_remember(*_: Any) -> None:
                return None

            user_mod.remember = no_remember  # type: ignore[assignment]
        if "keyboard" in ablate:
            gw = app.gateway
            plain = gw.send_message

            async def send_plain(chat_id: int, text: str, **_: Any) -> Any:
                return await plain(chat_id, "hi")

            gw.send_message = send_plain  # type: ignore[method-assign]
    await upgrade(app.db)
    await app.prepare()
    await app.start_workers()  # the outbox worker and sweeps run in production too
    return app.dispatcher, app.bot, app.stop


async def _bare(
    info: dict[str, Any], _workdir: Path
) -> tuple[Dispatcher, Bot, Callable[[], Awaitable[None]]]:
    bot = Bot(TOKENS["bare"], session=AiohttpSession(api=TelegramAPIServer.from_base(info["url"])))
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("hi")

    dp = Dispatcher()
    dp.include_router(router)
    return dp, bot, bot.session.close


async def _feed(dp: Dispatcher, bot: Bot, updates: list[Update], concurrency: int) -> None:
    if concurrency <= 1:
        for update in updates:
            await dp.feed_update(bot, update)
        return
    it = iter(updates)

    async def worker() -> None:
        for update in it:
            await dp.feed_update(bot, update)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_one(
    server: str, info: dict[str, Any], n: int, concurrency: int, profile: str | None, workdir: Path
) -> dict[str, Any]:
    build = _subbot if server == "subbot" else _bare
    dp, bot, close = await build(info, workdir / server)
    users = iter(info["users"])
    ids = itertools.count(1)

    def updates(count: int) -> list[Update]:
        return [
            Update.model_validate(json.loads(start_update(next(ids), next(users))), context={"bot": bot})
            for _ in range(count)
        ]

    try:
        await _feed(dp, bot, updates(WARMUP), concurrency)
        batch = updates(n)
        prof: Any = None
        if profile == "cprofile":
            prof = cProfile.Profile(time.thread_time)  # CPU time: being descheduled on a busy box is not cost
            prof.enable()
        elif profile == "pyinstrument":
            from pyinstrument import Profiler

            prof = Profiler(interval=0.0005, async_mode="disabled")
            prof.start()
        gc_time = [0.0, 0.0, 0.0]
        gc_count = [0, 0, 0]
        gc_started = [0.0]

        def on_gc(phase: str, gc_info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gen = gc_info["generation"]
                gc_time[gen] += time.perf_counter() - gc_started[0]
                gc_count[gen] += 1

        gc.callbacks.append(on_gc)
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        await _feed(dp, bot, batch, concurrency)
        gc.callbacks.remove(on_gc)
        cpu, loop_cpu, wall = (
            time.process_time() - cpu,
            time.thread_time() - loop_cpu,
            time.perf_counter() - wall,
        )
        text = ""
        if profile == "cprofile":
            prof.disable()
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.strip_dirs().sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(45)
            stats.print_callees("make_request|check_response|build_form_data|_on_begin|remember")
            text = out.getvalue()
        elif profile == "pyinstrument":
            prof.stop()
            text = prof.output_text(unicode=False, color=False)
    finally:
        await close()
    return {
        "server": server,
        "n": n,
        "cpu_ms": cpu / n * 1000,
        "loop_cpu_ms": loop_cpu / n * 1000,
        "wall_ms": wall / n * 1000,
        "rate": n / wall,
        "profile": text,
        "gc": ", ".join(f"gen{g}: {gc_count[g]}× {gc_time[g] * 1000:.0f} ms" for g in range(3)),
        "objects": len(gc.get_objects()),
    }


async def main_async(opts: argparse.Namespace) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="subbot-profile-start-"))
    results = []
    try:
        for server in ("subbot", "bare"):
            (workdir / server).mkdir()
        users = 2 * (WARMUP + opts.n) * opts.repeat
        sandbox = await Child.start(
            "sandbox", "sandbox", {"bots": TOKENS, "users": users}, workdir, ready_within=180
        )
        try:
            info = dict(sandbox.info)
            all_users = list(info["users"])
            chunk = WARMUP + opts.n
            k = 0
            for _ in range(opts.repeat):
                for server in opts.servers:
                    info["users"] = all_users[k * chunk : (k + 1) * chunk]
                    k += 1
                    shutil.rmtree(workdir / server, ignore_errors=True)
                    (workdir / server).mkdir()
                    results.append(
                        await run_one(server, info, opts.n, opts.concurrency, opts.profile, workdir)
                    )
        finally:
            await sandbox.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_start")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", choices=("subbot", "bare"), default=None)
    p.add_argument("--profile", choices=("cprofile", "pyinstrument"), default=None)
    opts = p.parse_args(list(argv))
    opts.servers = (opts.only,) if opts.only else ("subbot", "bare")
    results = asyncio.run(main_async(opts))
    for r in results:
        if r["profile"]:
            print(f"===== {r['server']} =====")
            print(r["profile"])
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"load average {load}; N={opts.n}, concurrency {opts.concurrency}")
    for r in results:
        print(
            f"{r['server']:>7}: CPU {r['cpu_ms']:.2f} ms/update (loop thread {r['loop_cpu_ms']:.2f}), "
            f"wall {r['wall_ms']:.2f} ms/update, {r['rate']:.0f} updates/s; GC {r['gc']}; "
            f"{r['objects']} tracked objects"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
