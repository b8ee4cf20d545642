"""Webhook ingest (issue 2): how many ``/start`` updates per second subbot's webhook takes, and how fast.

``python -m bench webhook [--n 2000] [--concurrency 32] [--rate 200] [--duration 10] [--profile]``

Three kinds of process, so that no two of them share an event loop:

* the Telegram sandbox (rate limits off), started once, with two bots and pre-started users;
* the server under test, one at a time: subbot in webhook mode (``subbot.runner.serve``, fresh migrated
  SQLite file, production logging), then the baseline, a bare aiogram Dispatcher with one ``/start``
  handler behind FastAPI + uvicorn; both answer 200 only after the update is handled, reply included;
* this process, the aiohttp load generator, POSTing Update JSON with the secret header.

Each server gets the same phases: a warm-up (not reported), max throughput (N updates, closed loop,
``--concurrency`` connections) and steady load (``--rate`` updates/s for ``--duration`` s, open loop).
Every update comes from a different user, so subbot inserts a new user row for each. After each phase the
sandbox's call log must show exactly one successful sendMessage per update, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import math
import os
import platform
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from bench.loadgen import LoadResult, closed_loop, open_loop
from bench.procs import BenchError, Child
from bench.servers import WEBHOOK_PATH

TOKENS = {
    "subbot": "700001:bench-subbot-token-not-a-secret-abcdefgh",
    "bare": "700002:bench-bare-aiogram-token-not-a-secret-abc",
}
LABELS = {"subbot": "subbot", "bare": "bare aiogram"}
AIM_RATIO = 0.6
AIM_STEADY_P99 = 0.100  # seconds
WARMUP = 200

console = Console(width=None if sys.stdout.isatty() else 170)


@dataclass
class Options:
    n: int = 2000
    concurrency: int = 32
    rate: float = 200.0
    duration: float = 10.0
    profile: bool = False
    keep: bool = False
    log_level: str | None = None
    json_out: str | None = None
    servers: tuple[str, ...] = ("subbot", "bare")

    @property
    def steady_count(self) -> int:
        return int(self.rate * self.duration)


@dataclass
class Phase:
    server: str
    name: str
    updates: int
    ok: int
    errors: dict[str, int]
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    send_message_ok: int
    send_message_failed: int
    cpu_server: float | None  # percent of one core, all threads
    cpu_server_loop: float | None  # the event-loop (main) thread only
    cpu_sandbox: float | None
    cpu_client: float
    max_lag_ms: float

    def problems(self) -> list[str]:
        out = []
        if self.ok != self.updates or self.errors:
            out.append(f"{self.ok}/{self.updates} POSTs answered 200 (errors: {self.errors or 'none'})")
        if self.send_message_ok != self.updates or self.send_message_failed:
            out.append(
                f"the sandbox saw {self.send_message_ok} successful sendMessage calls for {self.updates} "
                f"updates ({self.send_message_failed} failed)"
            )
        return [f"{LABELS[self.server]} / {self.name}: {p}" for p in out]


@dataclass
class Report:
    machine: dict[str, Any]
    options: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)
    sandbox_violations: list[str] = field(default_factory=list)
    profile: dict[str, str] = field(default_factory=dict)

    def phase(self, server: str, name: str) -> Phase | None:
        return next((p for p in self.phases if p.server == server and p.name == name), None)


def start_update(update_id: int, user_id: int) -> bytes:
    """A private ``/start`` message from ``user_id``, as Telegram would POST it."""
    user = {
        "id": user_id,
        "is_bot": False,
        "first_name": f"User{user_id}",
        "username": f"bench_user_{user_id}",
        "language_code": "en",
    }
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {
            "id": user_id,
            "type": "private",
            "first_name": user["first_name"],
            "username": user["username"],
        },
        "from": user,
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_before": load_average(),
    }


class SandboxLog:
    """Reads the sandbox's call log through its control API."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def _get(self, path: str) -> Any:
        async with self.session.get(self.base + path) as r:
            body = await r.json()
        if not body.get("ok"):
            raise BenchError(f"sandbox control API {path}: {body}")
        return body["result"]

    async def mark(self) -> int:
        result = await self._get(f"/control/calls?since={2**62}")
        return int(result["next"])

    async def send_messages(self, since: int, bot_id: int) -> tuple[int, int]:
        calls = (await self._get(f"/control/calls?since={since}"))["calls"]
        mine = [c for c in calls if c["method"] == "sendMessage" and c["bot_id"] == bot_id]
        ok = sum(1 for c in mine if c["ok"])
        return ok, len(mine) - ok

    async def violations(self) -> list[str]:
        return list(await self._get("/control/violations"))


def _cpu_percent(before: float | None, after: float | None, wall: float) -> float | None:
    if before is None or after is None or wall <= 0:
        return None
    return 100.0 * (after - before) / wall


async def measure(
    name: str,
    server: str,
    child: Child,
    sandbox: Child,
    log: SandboxLog,
    bot_id: int,
    updates: int,
    load: Callable[[], Awaitable[LoadResult]],
) -> Phase:
    since = await log.mark()
    server_cpu, loop_cpu, sandbox_cpu = (
        child.cpu_seconds(),
        child.main_thread_cpu_seconds(),
        sandbox.cpu_seconds(),
    )
    result = await load()
    server_cpu2, loop_cpu2, sandbox_cpu2 = (
        child.cpu_seconds(),
        child.main_thread_cpu_seconds(),
        sandbox.cpu_seconds(),
    )
    sent_ok, sent_failed = await log.send_messages(since, bot_id)
    if child.proc.returncode is not None:
        raise BenchError(f"the {server} server died during {name}; its output:\n{child.output_tail()}")
    return Phase(
        server=server,
        name=name,
        updates=updates,
        ok=result.ok,
        errors=dict(result.errors),
        throughput=result.throughput,
        p50_ms=result.percentile(50) * 1000,
        p90_ms=result.percentile(90) * 1000,
        p99_ms=result.percentile(99) * 1000,
        max_ms=max(result.latencies, default=math.nan) * 1000,
        wall_s=result.wall,
        send_message_ok=sent_ok,
        send_message_failed=sent_failed,
        cpu_server=_cpu_percent(server_cpu, server_cpu2, result.wall),
        cpu_server_loop=_cpu_percent(loop_cpu, loop_cpu2, result.wall),
        cpu_sandbox=_cpu_percent(sandbox_cpu, sandbox_cpu2, result.wall),
        cpu_client=100.0 * result.client_cpu / result.wall if result.wall > 0 else 0.0,
        max_lag_ms=result.max_lag * 1000,
    )


async def start_server(server: str, sandbox_info: dict[str, Any], opts: Options, workdir: Path) -> Child:
    port = free_port()
    config: dict[str, Any] = {"port": port, "token": TOKENS[server], "api_url": sandbox_info["url"]}
    if server == "subbot":
        config.update(group=sandbox_info["group"], workdir=str(workdir), log_level=opts.log_level)
    else:
        config.update(secret=secrets.token_hex(32))
    if opts.profile:
        config["profile"] = str(workdir / f"{server}.prof")
    child = await Child.start(server, server, config, workdir)
    child.info.setdefault("secret", config.get("secret"))
    return child


async def bench_server(
    server: str, sandbox: Child, log: SandboxLog, opts: Options, workdir: Path, ids: Any
) -> list[Phase]:
    info = sandbox.info
    bot_id = int(info["bots"][server])
    users: list[int] = info["users"]
    warm, rest = users[:WARMUP], users[WARMUP:]
    peak_users, steady_users = rest[: opts.n], rest[opts.n : opts.n + opts.steady_count]
    warm_bodies = [start_update(next(ids), u) for u in warm]
    peak_bodies = [start_update(next(ids), u) for u in peak_users]
    steady_bodies = [start_update(next(ids), u) for u in steady_users]

    console.print(f"[bold]{LABELS[server]}[/]: starting the server …")
    child = await start_server(server, info, opts, workdir)
    try:
        url = child.info["url"] + WEBHOOK_PATH
        headers = {"X-Telegram-Bot-Api-Secret-Token": child.info["secret"]}
        phases = []
        steps: list[tuple[str, int, Callable[[], Awaitable[LoadResult]]]] = [
            ("warm-up", len(warm_bodies), lambda: closed_loop(url, warm_bodies, headers, opts.concurrency)),
            (
                "max throughput",
                len(peak_bodies),
                lambda: closed_loop(url, peak_bodies, headers, opts.concurrency),
            ),
            ("steady", len(steady_bodies), lambda: open_loop(url, steady_bodies, headers, opts.rate)),
        ]
        for name, count, load in steps:
            console.print(f"  {name}: {count} updates …")
            phases.append(await measure(name, server, child, sandbox, log, bot_id, count, load))
    finally:
        code = await child.stop()
        if code not in (0, None) and opts.profile:
            console.print(f"[yellow]{server} exited with {code}; profile may be missing[/]")
    return phases


def profile_summary(path: Path, top: int = 30) -> str:
    if not path.exists():
        return "(no profile written)"
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    out.write("\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def run(opts: Options) -> Report:
    report = Report(machine=machine(), options=asdict(opts))
    workdir = Path(tempfile.mkdtemp(prefix="subbot-bench-webhook-"))
    try:
        users = WARMUP + opts.n + opts.steady_count
        console.print(f"sandbox: starting with {users} users …")
        sandbox = await Child.start("sandbox", "sandbox", {"bots": TOKENS, "users": users}, workdir)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                log = SandboxLog(session, sandbox.info["url"])
                ids = itertools.count(1)
                for server in opts.servers:
                    report.phases += await bench_server(server, sandbox, log, opts, workdir, ids)
                report.sandbox_violations = await log.violations()
        finally:
            await sandbox.stop()
        if opts.profile:
            for server in opts.servers:
                report.profile[server] = profile_summary(workdir / f"{server}.prof")
    finally:
        if opts.keep:
            console.print(f"kept the work directory (database, logs, profiles): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.machine["load_after"] = load_average()
    return report


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}%"


def print_report(report: Report, opts: Options) -> None:
    m = report.machine
    table = Table(
        title=f"Webhook ingest: /start updates over POST {WEBHOOK_PATH} (SQLite, {m['nproc']} cores)",
        caption=(
            "latency = POST until the 200 (update handled, reply sent); CPU: 100% = one core; "
            "loop = the server's event-loop thread alone (the rest is aiosqlite's threads)"
        ),
    )
    for col in ("server", "phase", "updates", "200 OK", "updates/s", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("server", "phase") else "right", no_wrap=True)
    for col in ("sendMessage", "CPU server (loop)", "CPU ms/update", "CPU sandbox", "CPU client"):
        table.add_column(col, justify="right")
    for p in report.phases:
        if p.name == "warm-up":
            continue
        table.add_row(
            LABELS[p.server],
            f"max, c={opts.concurrency}"
            if p.name == "max throughput"
            else f"{opts.rate:g}/s × {opts.duration:g} s",
            str(p.updates),
            str(p.ok),
            f"{p.throughput:.0f}",
            _ms(p.p50_ms),
            _ms(p.p90_ms),
            _ms(p.p99_ms),
            _ms(p.max_ms),
            f"{p.send_message_ok}" + (f" (+{p.send_message_failed} failed)" if p.send_message_failed else ""),
            f"{_pct(p.cpu_server)} ({_pct(p.cpu_server_loop)})",
            "-" if p.cpu_server is None or not p.ok else f"{p.cpu_server / 100 * p.wall_s / p.ok * 1000:.1f}",
            _pct(p.cpu_sandbox),
            _pct(p.cpu_client),
        )
    console.print(table)
    console.print(
        f"machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, {m['platform']}; load average "
        f"{m['load_before']} before, {m.get('load_after', '?')} after (anything else running competes for "
        "the same cores)\n"
        f"fairness: the server under test, the Telegram sandbox and this load generator are three separate "
        f"processes (the generator's and the sandbox's garbage collectors are kept out of the measured "
        f"phases, bench/loadgen.py); each server is one asyncio process run the same way (plain asyncio "
        f"loop, uvicorn with httptools, no access log), one at a time, against the same sandbox, with the "
        f"same updates, N="
        f"{opts.n} and concurrency {opts.concurrency}. The sandbox does the same work for both bots. "
        f"subbot runs with its production logging (LOG_LEVEL={opts.log_level or 'INFO (default)'}); the "
        f"bare bot logs nothing. The CPU columns show who was busy: on {m['nproc']} cores the three "
        f"processes compete, so server CPU well below 100% means the server was not the only bottleneck.",
        highlight=False,
    )
    subbot, bare = report.phase("subbot", "max throughput"), report.phase("bare", "max throughput")
    steady = report.phase("subbot", "steady")
    if subbot and bare and steady:
        ratio = subbot.throughput / bare.throughput if bare.throughput else math.nan
        ok_ratio = ratio >= AIM_RATIO
        ok_p99 = steady.p99_ms < AIM_STEADY_P99 * 1000
        console.print(
            f"throughput ratio subbot / bare aiogram = {subbot.throughput:.0f} / {bare.throughput:.0f} = "
            f"[bold]{ratio:.2f}[/] (aim ≥ {AIM_RATIO}): {'[green]met[/]' if ok_ratio else '[red]not met[/]'}"
        )
        console.print(
            f"subbot p99 at a steady {opts.rate:g} updates/s = [bold]{steady.p99_ms:.1f} ms[/] "
            f"(aim < {AIM_STEADY_P99 * 1000:.0f} ms): {'[green]met[/]' if ok_p99 else '[red]not met[/]'}"
            f" (worst client send lag {steady.max_lag_ms:.1f} ms)"
        )
        if steady.max_lag_ms > 20:
            console.print(
                "[yellow]the load generator itself sent some requests over 20 ms late: those latencies "
                "include its own stall (another process on the cores?), not only the server's[/]"
            )
    if report.sandbox_violations:
        console.print(f"[yellow]sandbox violations ({len(report.sandbox_violations)}):[/]")
        for v in report.sandbox_violations[:10]:
            console.print(f"  {v}", highlight=False)
    for server, text in report.profile.items():
        console.rule(f"cProfile of the {LABELS[server]} server (main thread, whole run)")
        console.print(text, highlight=False, markup=False)


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench webhook", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="updates in the max-throughput phase (2000)")
    p.add_argument("--concurrency", type=int, default=32, help="connections in the max-throughput phase (32)")
    p.add_argument("--rate", type=float, default=200.0, help="updates/s in the steady phase (200)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of steady load (10)")
    p.add_argument("--profile", action="store_true", help="run both servers under cProfile and print the top")
    p.add_argument("--log-level", default=None, help="subbot LOG_LEVEL (default: subbot's default, INFO)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (database, logs, profiles)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    p.add_argument(
        "--only",
        choices=tuple(TOKENS),
        default=None,
        help="run one server only (no ratio); for investigations",
    )
    a = p.parse_args(list(argv))
    if a.n < 1 or a.concurrency < 1 or a.rate <= 0 or a.duration <= 0:
        p.error("--n, --concurrency, --rate and --duration must be positive")
    servers = (a.only,) if a.only else tuple(TOKENS)
    return Options(
        a.n, a.concurrency, a.rate, a.duration, a.profile, a.keep, a.log_level, a.json_out, servers
    )


def _runner() -> asyncio.Runner:
    """The load generator may use uvloop (it is not under test): less client CPU on a small machine."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        with _runner() as runner:
            report = runner.run(run(opts))
    except BenchError as exc:
        console.print(f"[red]webhook benchmark failed:[/] {exc}", highlight=False)
        return 1
    print_report(report, opts)
    if opts.json_out:
        Path(opts.json_out).write_text(json.dumps(asdict(report), indent=2, default=str))
    problems = [p for phase in report.phases for p in phase.problems()]
    if problems:
        console.print("[red]the figures are not valid:[/]")
        for problem in problems:
            console.print(f"  {problem}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
