"""More server processes, for the payment and lifecycle benchmarks: ``python -m bench.roles ROLE CONFIG``.

Roles (each writes its ready file, see :mod:`bench.procs`, and stops when its stdin is closed):

* ``subbot``: subbot in webhook mode, run by ``subbot.runner.serve`` exactly as ``subbot run`` does
  (production logging), on an already migrated and seeded database given by URL (SQLite or PostgreSQL),
  with Airwallex configured (webhook secret; the API URL points at a closed local port and
  reconciliation is set to run once a day, so no Airwallex call is made during a run);
* ``telegram``: the Telegram sandbox with one bot, a group where the bot is an administrator, and
  ``users`` people who have started the bot and, with ``"members": true``, are members of the group.
  ``"limits": true`` turns on the sandbox's Telegram-like rate limits (``RateLimits(enabled=True)``).

:func:`start` is :meth:`bench.procs.Child.start` for this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import REPO, BenchError, Child, stop_requested, write_ready

HOST = "127.0.0.1"


async def start(
    name: str, role: str, config: dict[str, Any], workdir: Path, ready_within: float = 60.0
) -> Child:
    """Start ``python -m bench.roles ROLE CONFIG`` and wait for its ready file."""
    ready_file = workdir / f"{name}.ready.json"
    log = workdir / f"{name}.log"
    config = {**config, "ready_file": str(ready_file)}
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.roles",
            role,
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(REPO),
            env=env,
        )
    child = Child(name, proc, ready_file, log)
    deadline = time.monotonic() + ready_within
    while not ready_file.exists():
        if proc.returncode is not None:
            raise BenchError(
                f"the {name} process exited with code {proc.returncode} before it was ready; "
                f"the end of its output:\n{child.output_tail()}"
            )
        if time.monotonic() > deadline:
            await child.stop()
            raise BenchError(
                f"the {name} process was not ready after {ready_within:.0f} s:\n{child.output_tail()}"
            )
        await asyncio.sleep(0.05)
    child.info = json.loads(ready_file.read_text())
    return child


async def run_telegram(cfg: dict[str, Any]) -> None:
    from subbot.sandbox.telegram import TelegramSandbox
    from subbot.sandbox.telegram.limits import RateLimits

    stop = await stop_requested()
    sandbox = TelegramSandbox(rate_limits=RateLimits(enabled=bool(cfg.get("limits"))))
    bot_id = sandbox.add_bot(cfg["token"], username="bench_subbot_bot")
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Members", owner_id=owner)
    sandbox.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    users = [sandbox.add_user(f"User{n}", username=f"bench_user_{n}") for n in range(int(cfg["users"]))]
    # What people.send_text records when a person writes to the bot: the bot may now message them.
    sandbox.world.bots[bot_id].started_by.update(users)
    if cfg.get("members"):
        for uid in users:
            sandbox.add_member(group, uid)  # set-up: no chat_member updates
    async with sandbox.serve(HOST, 0) as url:
        write_ready(cfg["ready_file"], {"url": url, "group": group, "bot_id": bot_id, "users": users})
        await stop.wait()


async def run_subbot(cfg: dict[str, Any]) -> None:
    from subbot.app import SubbotApp
    from subbot.config import load_settings
    from subbot.logging_setup import configure_logging
    from subbot.runner import serve
    from subbot.telegram.limiter import Limits

    stop = await stop_requested()
    tmp = Path(cfg["workdir"])
    port = int(cfg["port"])
    extra: dict[str, Any] = {}
    if cfg.get("log_level"):
        extra["log_level"] = cfg["log_level"]
    if cfg.get("pool_size"):
        extra["database_pool_size"] = int(cfg["pool_size"])
    settings = load_settings(
        _env_file=None,
        bot_token=cfg["token"],
        group_id=cfg["group"],
        telegram_api_url=cfg["api_url"],
        database_url=cfg["database_url"],
        public_url=f"http://{HOST}:{port}",
        lock_dir=tmp,
        log_dir=tmp / f"{cfg['name']}-logs",
        airwallex_client_id="bench-client",
        airwallex_api_key="bench-api-key",
        airwallex_webhook_secret=cfg["webhook_secret"],
        airwallex_base_url=cfg["airwallex_url"],
        reconcile_interval_seconds=86400,
        **extra,
    )
    configure_logging(settings)
    app = SubbotApp(settings, limits=Limits(enabled=False))
    started = asyncio.Event()
    serving = asyncio.create_task(serve(app, HOST, port, started))
    ready_wait = asyncio.create_task(started.wait())
    await asyncio.wait({serving, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
    ready_wait.cancel()
    if serving.done():
        serving.result()  # raises the start-up error, if any
        raise RuntimeError("subbot stopped before it was ready")
    write_ready(cfg["ready_file"], {"url": f"http://{HOST}:{port}"})
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


ROLES = {"telegram": run_telegram, "subbot": run_subbot}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ROLES:
        print(f"usage: python -m bench.roles {{{','.join(ROLES)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    cfg: dict[str, Any] = json.loads(argv[1])
    profile = str(cfg.get("profile") or "")
    # CPU time, not wall time: on a loaded machine a function is not charged for the time it sat descheduled.
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler is not None:
        profiler.enable()  # the whole process, start-up included (main thread only)
    try:
        asyncio.run(ROLES[argv[0]](cfg))  # plain asyncio, as `subbot run` does
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
