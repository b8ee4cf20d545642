"""Airwallex webhook (issue 3): signed ``payment_intent.succeeded`` events/s, latency, no double activation.

``python -m bench airwallex [--n 1000] [--concurrency 32] [--dup-events 200] [--copies 5]
[--backends sqlite,postgres] [--pool-size N] [--keep] [--json FILE]``

For each backend (SQLite file; PostgreSQL on 127.0.0.1:5432, a fresh ``subbot_bench_<random>`` database
dropped afterwards), the database is migrated with ``subbot.store.migrate.upgrade`` and seeded with one
pending card order per event (a ``users`` row and an ``orders`` row: provider ``airwallex``, plan
``standard``, 200 USD), as ``create_card_order`` leaves it. Then subbot is started as production runs it
(``subbot.runner.serve`` in its own process, webhook mode, production logging, AIRWALLEX_* set,
reconciliation once a day) against the Telegram sandbox (another process; every user has started the bot,
so the outbox worker really creates the invite links and sends the "Payment received" messages).

This process POSTs the events to ``/webhook/airwallex``, signed as Airwallex signs them (HMAC-SHA256 of
``x-timestamp`` in milliseconds + body), over ``--concurrency`` connections (closed loop):

* warm-up (not reported), then **max throughput**: ``--n`` distinct events; events/s and latency
  (POST until the 200, i.e. verified, stored, applied and committed with its outbox job);
* **drain**: how long after the last 200 the outbox worker needs to deliver every grant (invite link +
  message), i.e. the end-to-end backlog the burst left;
* **duplicates**: ``--dup-events`` new events, each POSTed ``--copies`` times at the same moment.

Check: afterwards the database must hold exactly one payment, one subscription, one ``grant_access`` job
and one paid order per distinct event, every POST must be answered 200, and the duplicate run must
report exactly one ``applied`` per event; otherwise the run exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select

from bench import roles
from bench.dbs import fresh_database, migrated
from bench.loadgen import REQUEST_TIMEOUT, LoadResult, no_gc_pauses
from bench.procs import BenchError, Child
from bench.webhook_ingest import _runner, free_port, load_average, machine, profile_summary
from subbot.domain.plans import load_plans
from subbot.payments.airwallex.webhook import signature
from subbot.services.checkout import new_order_id
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import InboundEvent, Order, OutboxJob, Payment, Subscription, User

TOKEN = "700011:bench-airwallex-token-not-a-secret-abcd"
PATH = "/webhook/airwallex"
AMOUNT_MINOR = 20000  # 200.00 USD, the default "standard" card price
AIM_PG = 300.0  # events/s on PostgreSQL
WARMUP = 100
DRAIN_TIMEOUT = 120.0

console = Console(width=None if sys.stdout.isatty() else 170)


@dataclass
class Options:
    n: int = 1000
    concurrency: int = 32
    dup_events: int = 200
    copies: int = 5
    backends: tuple[str, ...] = ("sqlite", "postgres")
    pool_size: int | None = None
    log_level: str | None = None
    keep: bool = False
    json_out: str | None = None
    profile: bool = False


@dataclass
class Phase:
    backend: str
    name: str
    posts: int
    ok: int
    errors: dict[str, int]
    rate: float  # POSTs/s
    p50_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    cpu_server: float | None
    cpu_sandbox: float | None
    outcomes: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_post: float | None = None  # subbot's CPU (all threads) during the phase / POSTs


@dataclass
class BackendResult:
    backend: str
    phases: list[Phase] = field(default_factory=list)
    drain_s: float | None = None
    drain_done: int = 0
    drain_cpu_ms: float | None = None  # subbot's CPU from the first POST until the last grant, per event
    counts: dict[str, int] = field(default_factory=dict)
    expected: int = 0
    profile: str = ""

    def problems(self) -> list[str]:
        out = []
        for p in self.phases:
            if p.ok != p.posts or p.errors:
                out.append(f"{p.name}: {p.ok}/{p.posts} POSTs answered 200 (errors: {p.errors or 'none'})")
        for name, value in self.counts.items():
            if name != "grant_access done" and value != self.expected:
                out.append(f"{name} = {value}, expected {self.expected} (one per distinct event)")
        return [f"{self.backend}: {p}" for p in out]


@dataclass
class Report:
    machine: dict[str, Any]
    options: dict[str, Any]
    backends: list[BackendResult] = field(default_factory=list)
    sandbox_violations: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: bytes
    headers: dict[str, str]


def make_event(secret: str, order_id: str, now: datetime) -> Delivery:
    """A ``payment_intent.succeeded`` envelope as Airwallex sends it, signed with ``x-timestamp`` in ms."""
    event_id = f"evt_{secrets.token_hex(12)}"
    intent_id = f"int_{secrets.token_hex(12)}"
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S+0000")
    intent = {
        "id": intent_id,
        "request_id": secrets.token_hex(16),
        "amount": AMOUNT_MINOR / 100,
        "currency": "USD",
        "merchant_order_id": order_id,
        "metadata": {"order_id": order_id, "plan": "standard"},
        "status": "SUCCEEDED",
        "captured_amount": AMOUNT_MINOR / 100,
        "created_at": stamp,
        "updated_at": stamp,
    }
    envelope = {
        "id": event_id,
        "name": "payment_intent.succeeded",
        "account_id": "acct_bench",
        "data": {"object": intent},
        "created_at": stamp,
        "version": "2024-06-30",
    }
    body = json.dumps(envelope, separators=(",", ":")).encode()
    ts = str(int(time.time() * 1000))
    headers = {
        "Content-Type": "application/json",
        "x-timestamp": ts,
        "x-signature": signature(secret, ts, body),
    }
    return Delivery(event_id, body, headers)


async def seed_orders(db: Database, users: Sequence[int], group: int) -> list[str]:
    """Plans as the app mirrors them, then one user and one pending airwallex order per user."""
    now = datetime.now(UTC)
    orders = [new_order_id() for _ in users]
    async with db.write() as session:
        await plan_store.sync(session, load_plans(None, (group,)), now)
        await session.execute(
            insert(User),
            [
                {
                    "id": uid,
                    "username": f"bench_user_{uid}",
                    "first_name": f"User{uid}",
                    "language_code": "en",
                    "is_whitelisted": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for uid in users
            ],
        )
        await session.execute(
            insert(Order),
            [
                {
                    "id": oid,
                    "user_id": uid,
                    "plan_code": "standard",
                    "provider": "airwallex",
                    "amount_minor": AMOUNT_MINOR,
                    "currency": "USD",
                    "status": "pending",
                    "provider_ref": None,
                    "created_at": now,
                    "expires_at": now + timedelta(hours=1),
                }
                for oid, uid in zip(orders, users, strict=True)
            ],
        )
    return orders


# ------------------------------------------------------------------------------------------- load
async def _post(
    session: aiohttp.ClientSession, url: str, d: Delivery, result: LoadResult, outcomes: Counter[str]
) -> None:
    result.sent += 1
    due = time.perf_counter()
    try:
        async with session.post(url, data=d.body, headers=d.headers) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.errors[type(exc).__name__] += 1
        return
    if status != 200:
        result.errors[f"HTTP {status}"] += 1
        return
    result.ok += 1
    result.latencies.append(time.perf_counter() - due)
    try:
        outcomes[str(json.loads(payload).get("outcome"))] += 1
    except ValueError:
        outcomes["unparsable"] += 1


async def closed_loop(
    url: str, deliveries: Sequence[Delivery], concurrency: int
) -> tuple[LoadResult, Counter[str]]:
    """``concurrency`` workers, each POSTing its next event as soon as the previous answer arrives."""
    result, outcomes = LoadResult(), Counter[str]()
    pending = iter(deliveries)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:

        async def worker() -> None:
            for d in pending:  # shared iterator: each delivery is sent once
                await _post(session, url, d, result, outcomes)

        with no_gc_pauses():  # this process's collector stays out of the latencies (bench/loadgen.py)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            result.wall = time.perf_counter() - t0
    return result, outcomes


async def duplicate_storm(
    url: str, deliveries: Sequence[Delivery], copies: int, concurrency: int
) -> tuple[LoadResult, Counter[str]]:
    """Each event POSTed ``copies`` times at once; ``concurrency // copies`` events in flight."""
    result, outcomes = LoadResult(), Counter[str]()
    pending = iter(deliveries)
    connector = aiohttp.TCPConnector(limit=max(concurrency, copies))
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:

        async def worker() -> None:
            for d in pending:
                await asyncio.gather(*(_post(session, url, d, result, outcomes) for _ in range(copies)))

        with no_gc_pauses():
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency // copies))))
            result.wall = time.perf_counter() - t0
    return result, outcomes


def _pct(q: float, result: LoadResult) -> float:
    return result.percentile(q) * 1000


def _cpu(before: float | None, after: float | None, wall: float) -> float | None:
    if before is None or after is None or wall <= 0:
        return None
    return 100.0 * (after - before) / wall


async def measure(backend: str, name: str, child: Child, sandbox: Child, coro: Any) -> Phase:
    c0, s0 = child.cpu_seconds(), sandbox.cpu_seconds()
    result, outcomes = await coro
    c1, s1 = child.cpu_seconds(), sandbox.cpu_seconds()
    if child.proc.returncode is not None:
        raise BenchError(f"subbot died during {name}; its output:\n{child.output_tail()}")
    return Phase(
        backend=backend,
        name=name,
        posts=result.sent,
        ok=result.ok,
        errors=dict(result.errors),
        rate=result.throughput,
        p50_ms=_pct(50, result),
        p99_ms=_pct(99, result),
        max_ms=max(result.latencies, default=math.nan) * 1000,
        wall_s=result.wall,
        cpu_server=_cpu(c0, c1, result.wall),
        cpu_sandbox=_cpu(s0, s1, result.wall),
        outcomes=dict(outcomes),
        cpu_ms_per_post=None
        if c0 is None or c1 is None or not result.sent
        else 1000 * (c1 - c0) / result.sent,
    )


async def counts(db: Database) -> dict[str, int]:
    async with db.sessions() as s:

        async def n(stmt: Any) -> int:
            return int(await s.scalar(stmt) or 0)

        return {
            "inbound events": await n(select(func.count()).select_from(InboundEvent)),
            "payments": await n(
                select(func.count()).select_from(Payment).where(Payment.provider == "airwallex")
            ),
            "subscriptions": await n(select(func.count()).select_from(Subscription)),
            "paid orders": await n(select(func.count()).select_from(Order).where(Order.status == "paid")),
            "grant_access jobs": await n(
                select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "grant_access")
            ),
            "grant_access done": await n(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.kind == "grant_access", OutboxJob.state == "done")
            ),
        }


async def drain(db: Database, expected: int, within: float = DRAIN_TIMEOUT) -> tuple[float | None, int]:
    """Seconds until every grant_access job is done (None after ``within`` s), and how many were done."""
    t0 = time.perf_counter()
    done = 0
    while time.perf_counter() - t0 < within:
        done = (await counts(db))["grant_access done"]
        if done >= expected:
            return time.perf_counter() - t0, done
        await asyncio.sleep(0.25)
    return None, done


async def bench_backend(backend: str, opts: Options, sandbox: Child, workdir: Path) -> BackendResult:
    out = BackendResult(backend)
    info = sandbox.info
    users: list[int] = info["users"]
    secret = secrets.token_hex(24)
    async with fresh_database(backend, workdir, f"airwallex-{backend}") as url:
        console.print(f"[bold]{backend}[/]: migrating and seeding {len(users)} pending card orders …")
        db = await migrated(url)
        try:
            orders = await seed_orders(db, users, int(info["group"]))
            now = datetime.now(UTC)
            events = [make_event(secret, oid, now) for oid in orders]
            warm = events[:WARMUP]
            peak = events[WARMUP : WARMUP + opts.n]
            dup = events[WARMUP + opts.n : WARMUP + opts.n + opts.dup_events]
            config: dict[str, Any] = {
                "name": f"subbot-{backend}",
                "workdir": str(workdir),
                "port": free_port(),
                "token": TOKEN,
                "group": info["group"],
                "api_url": info["url"],
                "database_url": url,
                "webhook_secret": secret,
                "airwallex_url": f"http://127.0.0.1:{free_port()}",  # closed: no call is expected
                "pool_size": opts.pool_size,
                "log_level": opts.log_level,
                "profile": str(workdir / f"subbot-{backend}.prof") if opts.profile else None,
            }
            child = await roles.start(f"subbot-{backend}", "subbot", config, workdir)
            try:
                target = child.info["url"] + PATH
                console.print(f"  warm-up: {len(warm)} events …")
                await measure(backend, "warm-up", child, sandbox, closed_loop(target, warm, opts.concurrency))
                await drain(db, len(warm))
                console.print(f"  max throughput: {len(peak)} events, c={opts.concurrency} …")
                cpu_start = child.cpu_seconds()
                out.phases.append(
                    await measure(
                        backend, "max throughput", child, sandbox, closed_loop(target, peak, opts.concurrency)
                    )
                )
                out.drain_s, out.drain_done = await drain(db, len(warm) + len(peak))
                cpu_end = child.cpu_seconds()
                if cpu_start is not None and cpu_end is not None and out.drain_s is not None:
                    out.drain_cpu_ms = 1000 * (cpu_end - cpu_start) / len(peak)
                console.print(f"  duplicates: {len(dup)} events × {opts.copies} at once …")
                out.phases.append(
                    await measure(
                        backend,
                        "duplicates",
                        child,
                        sandbox,
                        duplicate_storm(target, dup, opts.copies, opts.concurrency),
                    )
                )
                await drain(db, len(events), within=30)
                out.expected = len(events)
                out.counts = await counts(db)
            finally:
                await child.stop()
        finally:
            await db.dispose()
    if opts.profile:
        out.profile = profile_summary(workdir / f"subbot-{backend}.prof")
    return out


async def run(opts: Options) -> Report:
    report = Report(machine=machine(), options=asdict(opts))
    workdir = Path(tempfile.mkdtemp(prefix="subbot-bench-airwallex-"))
    try:
        n_users = WARMUP + opts.n + opts.dup_events
        console.print(f"Telegram sandbox: starting with {n_users} users …")
        sandbox = await roles.start("telegram", "telegram", {"token": TOKEN, "users": n_users}, workdir)
        try:
            for backend in opts.backends:
                report.backends.append(await bench_backend(backend, opts, sandbox, workdir))
            async with (
                aiohttp.ClientSession() as session,
                session.get(sandbox.info["url"] + "/control/violations") as r,
            ):
                report.sandbox_violations = list((await r.json()).get("result") or [])
        finally:
            await sandbox.stop()
    finally:
        if opts.keep:
            console.print(f"kept the work directory (SQLite file, logs): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.machine["load_after"] = load_average()
    return report


def _f(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def print_report(report: Report, opts: Options) -> None:
    m = report.machine
    table = Table(
        title=f"Airwallex webhook: signed payment_intent.succeeded over POST {PATH} ({m['nproc']} cores)",
        caption="latency = POST until the 200 (verified, stored, applied, committed); CPU 100% = one core",
    )
    for col in ("backend", "phase", "POSTs", "200 OK", "POSTs/s", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("backend", "phase") else "right", no_wrap=True)
    for col in ("outcomes", "CPU subbot", "CPU sandbox", "subbot CPU ms/POST"):
        table.add_column(col, justify="right")
    for b in report.backends:
        for p in b.phases:
            label = f"max, c={opts.concurrency}" if p.name == "max throughput" else f"{opts.copies}× each"
            table.add_row(
                b.backend,
                label,
                str(p.posts),
                str(p.ok),
                f"{p.rate:.0f}",
                _f(p.p50_ms),
                _f(p.p99_ms),
                _f(p.max_ms),
                ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items())),
                _f(p.cpu_server, ".0f") + "%",
                _f(p.cpu_sandbox, ".0f") + "%",
                _f(p.cpu_ms_per_post, ".2f"),
            )
    console.print(table)
    for b in report.backends:
        drain = (
            f"not all within {DRAIN_TIMEOUT:.0f} s ({b.drain_done} done)"
            if b.drain_s is None
            else f"{b.drain_s:.1f} s"
        )
        console.print(
            f"{b.backend}: grants delivered (invite link + message) {drain} after the last 200 of the "
            f"max-throughput phase (subbot CPU per event, webhook + grant: {_f(b.drain_cpu_ms, '.2f')} ms); "
            "database afterwards: "
            + ", ".join(f"{k} {v}" for k, v in b.counts.items())
            + f" (distinct events {b.expected})",
            highlight=False,
        )
    console.print(
        f"machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}; load average {m['load_before']} "
        f"before, {m.get('load_after', '?')} after; subbot, the Telegram sandbox and this load generator are "
        "separate processes sharing the cores",
        highlight=False,
    )
    pg = next((b for b in report.backends if b.backend == "postgres"), None)
    peak = next((p for p in pg.phases if p.name == "max throughput"), None) if pg else None
    if peak is not None:
        met = peak.rate >= AIM_PG
        console.print(
            f"PostgreSQL: [bold]{peak.rate:.0f} events/s[/] (aim ≥ {AIM_PG:.0f}): "
            + ("[green]met[/]" if met else "[red]not met[/]")
        )
    for b in report.backends:
        if b.profile:
            console.rule(f"cProfile of subbot on {b.backend} (main thread, whole process)")
            console.print(b.profile, highlight=False, markup=False)
    if report.sandbox_violations:
        console.print(f"[yellow]sandbox violations ({len(report.sandbox_violations)}):[/]")
        for v in report.sandbox_violations[:10]:
            console.print(f"  {v}", highlight=False)


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench airwallex", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="events in the max-throughput phase (1000)")
    p.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    p.add_argument("--dup-events", type=int, default=200, help="distinct events in the duplicate run (200)")
    p.add_argument("--copies", type=int, default=5, help="copies of each event sent at once (5)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--pool-size", type=int, default=None, help="DATABASE_POOL_SIZE (default: subbot's, 5)")
    p.add_argument("--log-level", default=None, help="subbot LOG_LEVEL (default INFO)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--profile", action="store_true", help="run subbot under cProfile and print the top")
    p.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    a = p.parse_args(list(argv))
    backends = tuple(b.strip() for b in a.backends.split(",") if b.strip())
    if not backends or any(b not in ("sqlite", "postgres") for b in backends):
        p.error("--backends takes sqlite and/or postgres")
    if min(a.n, a.concurrency, a.dup_events, a.copies) < 1:
        p.error("--n, --concurrency, --dup-events and --copies must be positive")
    return Options(
        a.n,
        a.concurrency,
        a.dup_events,
        a.copies,
        backends,
        a.pool_size,
        a.log_level,
        a.keep,
        a.json_out,
        a.profile,
    )


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        with _runner() as runner:
            report = runner.run(run(opts))
    except BenchError as exc:
        console.print(f"[red]airwallex benchmark failed:[/] {exc}", highlight=False)
        return 1
    print_report(report, opts)
    if opts.json_out:
        Path(opts.json_out).write_text(json.dumps(asdict(report), indent=2, default=str))
    problems = [p for b in report.backends for p in b.problems()]
    for b in report.backends:
        dup = next((p for p in b.phases if p.name == "duplicates"), None)
        if dup is not None and dup.outcomes.get("applied", 0) != opts.dup_events:
            problems.append(
                f"{b.backend}: the duplicate run applied {dup.outcomes.get('applied', 0)} events, "
                f"expected exactly {opts.dup_events}"
            )
    if problems:
        console.print("[red]the figures are not valid:[/]")
        for problem in problems:
            console.print(f"  {problem}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
