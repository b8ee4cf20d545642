"""Monitor (issue 5): wall time of ``monitor_production.py --full-check`` against a demo-like environment.

``python -m bench monitor [--members 500] [--runs 5] [--json FILE]``

The environment is the demo's: the Telegram sandbox (seeded as ``subbot demo`` seeds it), the Airwallex
sandbox with its webhook secret, and subbot's real process (``serve``: HTTP server, polling bot, workers)
on a fresh migrated SQLite file holding ``--members`` active subscriptions, all in this process. Measured:

* **in-process**: ``Monitor.run_once(all checks)`` (alerts on, no channel configured), median of ``--runs``;
* **command**: ``python scripts/monitor_production.py --full-check`` as the runbook runs it (a new
  interpreter: imports included), median wall time of ``--runs``, and its exit code (must be 0).

Aim: the command under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import insert

from bench.procs import REPO
from bench.webhook_ingest import machine
from subbot.app import SubbotApp
from subbot.config import load_settings
from subbot.demo import DEMO_AW_CLIENT, DEMO_AW_KEY, DEMO_AW_SECRET, DEMO_TOKEN, seed
from subbot.domain.clock import SystemClock
from subbot.ops.checks import ALL_CHECKS
from subbot.ops.monitor import Monitor
from subbot.runner import serve
from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.sandbox.telegram import TelegramSandbox
from subbot.store.migrate import upgrade
from subbot.store.models import Subscription, User
from subbot.telegram.limiter import Limits

AIM_S = 2.0
console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed_members(app: SubbotApp, n: int) -> None:
    now = SystemClock().now()
    plan = next(iter(app.ctx.plans))
    users = [
        {"id": 5_000_000 + i, "first_name": f"Member {i}", "created_at": now, "updated_at": now}
        for i in range(n)
    ]
    subs = [
        {
            "user_id": 5_000_000 + i,
            "plan_code": plan,
            "starts_at": now - timedelta(days=5),
            "ends_at": now + timedelta(days=10 + i % 20),
            "status": "active",
            "source": "grant",
            "next_reminder_at": now + timedelta(days=7 + i % 20),
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    async with app.db.write() as session:
        await session.execute(insert(User), users)
        await session.execute(insert(Subscription), subs)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def command(env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, exit code, output) of one ``--full-check`` in a new interpreter."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/monitor_production.py",
        "--full-check",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    wall = time.perf_counter() - started
    return wall, _children_cpu() - cpu, proc.returncode or 0, out.decode(errors="replace")


async def run(members: int, runs: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    sandbox = TelegramSandbox()
    group = seed(sandbox)
    airwallex = AirwallexSandbox(client_id=DEMO_AW_CLIENT, api_key=DEMO_AW_KEY, webhook_secret=DEMO_AW_SECRET)
    port = free_port()
    async with sandbox.serve() as tg_url, airwallex.serve() as aw_url:
        values: dict[str, Any] = {
            "bot_token": DEMO_TOKEN,
            "group_id": group,
            "telegram_api_url": tg_url,
            "database_url": f"sqlite+aiosqlite:///{tmp}/demo.db",
            "port": port,
            "lock_dir": tmp,
            "log_dir": tmp / "logs",
            "airwallex_client_id": DEMO_AW_CLIENT,
            "airwallex_api_key": DEMO_AW_KEY,
            "airwallex_webhook_secret": DEMO_AW_SECRET,
            "airwallex_base_url": aw_url,
        }
        settings = load_settings(_env_file=None, **values)
        app = SubbotApp(settings, limits=Limits(enabled=False))
        await upgrade(app.db)
        await app.prepare()  # the plans, mirrored into the database
        await seed_members(app, members)
        ready = asyncio.Event()
        server = asyncio.create_task(serve(app, "127.0.0.1", port, ready))
        await asyncio.wait_for(ready.wait(), 30)
        try:
            inproc: list[float] = []
            statuses: dict[str, str] = {}
            async with Monitor(settings) as monitor:
                for _ in range(runs):
                    started = time.perf_counter()
                    result = await monitor.run_once(ALL_CHECKS)
                    inproc.append(time.perf_counter() - started)
                    statuses = {r.component: r.status.value for r in result.results}
            env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp)}
            env.update({k.upper(): str(v) for k, v in values.items()})
            walls: list[float] = []
            cpus: list[float] = []
            codes: list[int] = []
            output = ""
            for _ in range(runs):
                wall, cpu, code, output = await command(env)
                walls.append(wall)
                cpus.append(cpu)
                codes.append(code)
        finally:
            server.cancel()
            try:
                await server
            except asyncio.CancelledError:
                pass
    return {
        "machine": machine(),
        "members": members,
        "runs": runs,
        "in_process_median_s": round(statistics.median(inproc), 3),
        "in_process_max_s": round(max(inproc), 3),
        "command_median_s": round(statistics.median(walls), 3),
        "command_max_s": round(max(walls), 3),
        "command_cpu_median_s": round(statistics.median(cpus), 3),
        "load_after": os.getloadavg(),
        "exit_codes": codes,
        "statuses": statuses,
        "last_output": output[-3000:],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench monitor", description=__doc__)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.members, args.runs))
    console.print(report["last_output"], highlight=False, markup=False)
    console.print(
        f"[bold]monitor --full-check[/] ({args.members} members, {args.runs} runs): "
        f"in-process median {report['in_process_median_s']} s (max {report['in_process_max_s']} s); "
        f"command median {report['command_median_s']} s (max {report['command_max_s']} s, "
        f"CPU {report['command_cpu_median_s']} s), load {report['machine']['load_before']}, "
        f"exit codes {report['exit_codes']}; aim < {AIM_S} s"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    ok = all(code == 0 for code in report["exit_codes"])
    if not ok:
        console.print("[red]the full check was not healthy against a healthy environment[/]")
    return 0 if ok else 1
