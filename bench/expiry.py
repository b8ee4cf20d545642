"""Expiry at scale (issue 4): removals/s against Telegram's limits and a bare loop; due-work queries at 1M.

``python -m bench expiry [--limited 900] [--unlimited 2000] [--rows 200000] [--parts a,b,c] [--profile]``

* **(a) at Telegram's limits** (``--limited`` subscriptions): the Telegram sandbox runs in its own process
  with ``RateLimits(enabled=True)`` (one global bucket of 30 calls/s, burst 30, per bot, which counts
  ``banChatMember``, ``unbanChatMember`` and ``sendMessage``; lookups are not limited). Every
  member is in the group and has started the bot. In this process subbot's real app (``SubbotApp`` on a
  fresh migrated SQLite file, default gateway ``Limits()``) starts its workers: the scheduler's lifecycle
  sweep (``sweep_expired`` in a loop) expires every subscription at once and the outbox worker performs
  the kicks (``banChatMember``, ``unbanChatMember``; owners and admins from one ``getChatAdministrators``
  per chat). Measured from the sandbox's call log: removals/s from the first ban to the last unban, and
  429s; and this process's CPU per removal while they ran.
* **(b) without limits** (``--unlimited`` subscriptions): sandbox limits off and ``Limits(enabled=False)``;
  the same app's removals/s, then a bare loop of ``ban_chat_member`` + ``unban_chat_member`` through
  an aiogram ``Bot`` with aiogram's own ``AiohttpSession`` (subbot's posts JSON bodies; same sandbox, same
  number of concurrent tasks as the outbox worker, ``OUTBOX_CONCURRENCY`` = 4) over as many other members.
* **(c) due-work queries on PostgreSQL** (``--rows`` subscriptions, COPY into a fresh database migrated
  with our migrations): the SELECT of ``sweep_expired`` and of ``sweep_reminders`` (SQL captured from
  the real functions), timed and ``EXPLAIN (ANALYZE, BUFFERS)``-ed, with nothing due and with rows due.

Checks: every removal must have happened (one successful ban and unban per member) or the run exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from rich.console import Console
from sqlalchemy import event, func, insert, select

from bench import roles
from bench.dbs import asyncpg_dsn, fresh_database, fresh_postgres, migrated
from bench.procs import BenchError, Child
from bench.webhook_ingest import _runner, load_average, machine
from subbot.app import SubbotApp
from subbot.config import load_settings
from subbot.domain.clock import SystemClock
from subbot.domain.plans import load_plans
from subbot.domain.subscriptions import next_reminder_at
from subbot.services.context import Policy, ServiceContext
from subbot.services.lifecycle import BATCH, sweep_expired, sweep_reminders
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import Membership, OutboxJob, Subscription, User
from subbot.telegram.limiter import Limits

TOKEN = "700021:bench-expiry-token-not-a-secret-abcdefgh"
SANDBOX_GLOBAL_PER_S = 30.0  # RateLimits().global_per_second
AIM_LIMITED = 0.95
AIM_BARE = 0.7
AIM_QUERY_MS = 50.0
REMOVAL_TIMEOUT = 600.0

console = Console(width=None if sys.stdout.isatty() else 170)


@dataclass
class Options:
    limited: int = 900
    unlimited: int = 2000
    rows: int = 200_000
    due: int = 500
    parts: tuple[str, ...] = ("a", "b", "c")
    concurrency: int = 4  # the outbox worker's default, used for the bare loop too
    json_out: str | None = None
    profile: bool = False  # cProfile (CPU-time clock) over subbot's run in (b)


@dataclass
class Removals:
    label: str
    members: int
    bans_ok: int
    unbans_ok: int
    get_member: int
    rate_limited: int  # 429 answers
    other_errors: int
    first_to_last_s: float  # first ban → last unban
    from_start_s: float  # workers started (or loop started) → last unban
    steady_rate: float  # removals/s between the 10th and the 90th percentile of the unbans
    limited_calls_per_s: float  # sandbox-limited calls (ban, unban, sendMessage) per second
    cpu_s: float = 0.0  # CPU of this process (all threads) while the removals ran: subbot or the bare loop

    @property
    def rate(self) -> float:
        return self.unbans_ok / self.first_to_last_s if self.first_to_last_s > 0 else 0.0

    @property
    def cpu_ms_per_removal(self) -> float:
        return 1000 * self.cpu_s / self.unbans_ok if self.unbans_ok else 0.0


@dataclass
class QueryTiming:
    name: str
    due_rows: int
    median_ms: float
    max_ms: float
    explain_ms: float
    plan: str
    function_ms: float | None = None  # the real function with a small limit, work included


@dataclass
class Report:
    machine: dict[str, Any]
    options: dict[str, Any]
    removals: list[Removals] = field(default_factory=list)
    queries: list[QueryTiming] = field(default_factory=list)
    load_s: float | None = None
    notes: list[str] = field(default_factory=list)
    profile: str = ""

    def get(self, label: str) -> Removals | None:
        return next((r for r in self.removals if r.label == label), None)


# ---------------------------------------------------------------------------------------- sandbox
class SandboxControl:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.base + path, json=body) as r:
            data = await r.json()
        if not data.get("ok"):
            raise BenchError(f"sandbox control API {path}: {data}")
        return data["result"]

    async def mark(self) -> int:
        return int((await self._call("GET", f"/control/calls?since={2**62}"))["next"])

    async def calls(self, since: int) -> list[dict[str, Any]]:
        return list((await self._call("GET", f"/control/calls?since={since}"))["calls"])

    async def limits(self, enabled: bool) -> None:
        await self._call("POST", "/control/limits", {"enabled": enabled})

    async def violations(self) -> list[str]:
        return list(await self._call("GET", "/control/violations"))


def analyse(label: str, members: set[int], calls: list[dict[str, Any]], started: float) -> Removals:
    """Removals of ``members`` as the sandbox saw them (its clock is time.time() in its own process)."""
    mine = [
        c for c in calls if c["params"].get("user_id") in members or c["params"].get("chat_id") in members
    ]
    bans = [c for c in mine if c["method"] == "banChatMember"]
    unbans = [c for c in mine if c["method"] == "unbanChatMember"]
    ok_unbans = sorted(c["at"] for c in unbans if c["ok"])
    first = min((c["at"] for c in bans), default=started)
    last = ok_unbans[-1] if ok_unbans else first
    steady = 0.0
    if len(ok_unbans) >= 20:
        lo, hi = ok_unbans[len(ok_unbans) // 10], ok_unbans[len(ok_unbans) * 9 // 10]
        steady = (len(ok_unbans) * 8 // 10) / (hi - lo) if hi > lo else 0.0
    limited = [
        c
        for c in calls
        if c["method"] in ("banChatMember", "unbanChatMember", "sendMessage") and first <= c["at"] <= last
    ]
    span = last - first
    return Removals(
        label=label,
        members=len(members),
        bans_ok=sum(1 for c in bans if c["ok"]),
        unbans_ok=len(ok_unbans),
        get_member=sum(1 for c in mine if c["method"] == "getChatMember"),
        rate_limited=sum(1 for c in mine if c.get("error_code") == 429),
        other_errors=sum(1 for c in mine if not c["ok"] and c.get("error_code") != 429),
        first_to_last_s=span,
        from_start_s=last - started,
        steady_rate=steady,
        limited_calls_per_s=len(limited) / span if span > 0 else 0.0,
    )


# ------------------------------------------------------------------------------------------ seeding
async def seed_expired(db: Database, users: Sequence[int], group: int, now: datetime) -> None:
    """Plans, then per user: a subscription that ended two days ago (past the 24 h grace), still
    ``active``, and a ``joined`` membership of the group (as the chat_member update records it)."""
    ends = now - timedelta(days=2)
    async with db.write() as session:
        await plan_store.sync(session, load_plans(None, (group,)), now)
    for start in range(0, len(users), 5000):
        chunk = users[start : start + 5000]
        async with db.write() as session:
            await session.execute(
                insert(User),
                [
                    {
                        "id": u,
                        "username": f"bench_user_{u}",
                        "first_name": f"User{u}",
                        "is_whitelisted": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in chunk
                ],
            )
            await session.execute(
                insert(Subscription),
                [
                    {
                        "user_id": u,
                        "plan_code": "standard",
                        "starts_at": ends - timedelta(days=30),
                        "ends_at": ends,
                        "status": "active",
                        "source": "payment",
                        "next_reminder_at": None,
                        "created_at": ends - timedelta(days=30),
                        "updated_at": ends - timedelta(days=30),
                    }
                    for u in chunk
                ],
            )
            await session.execute(
                insert(Membership),
                [
                    {"user_id": u, "chat_id": group, "state": "joined", "source": "invite", "updated_at": now}
                    for u in chunk
                ],
            )


async def kicks_finished(db: Database) -> int:
    async with db.sessions() as s:
        stmt = (
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.kind == "kick", OutboxJob.state.in_(("done", "dead")))
        )
        return int(await s.scalar(stmt) or 0)


async def run_app_removals(
    label: str,
    users: Sequence[int],
    sandbox: Child,
    control: SandboxControl,
    workdir: Path,
    limits: Limits,
    profile: cProfile.Profile | None = None,
) -> Removals:
    info = sandbox.info
    async with fresh_database(
        "sqlite", workdir, "expiry-" + "".join(ch for ch in label if ch.isalnum())
    ) as url:
        db = await migrated(url)
        try:
            await seed_expired(db, users, int(info["group"]), datetime.now(UTC))
        finally:
            await db.dispose()
        settings = load_settings(
            _env_file=None,
            bot_token=TOKEN,
            group_id=info["group"],
            telegram_api_url=info["url"],
            database_url=url,
            lock_dir=workdir,
            log_dir=workdir / "logs",
        )
        app = SubbotApp(settings, limits=limits)
        try:
            await app.prepare()
            mark = await control.mark()
            started, cpu0 = time.time(), time.process_time()
            if profile is not None:
                profile.enable()
            await app.start_workers()  # the scheduler's first pass runs the lifecycle sweep at once
            deadline = time.monotonic() + REMOVAL_TIMEOUT
            # The worker's own counter is free to read; the database is asked only once it could be over,
            # so the benchmark's polling adds (almost) nothing to the CPU it measures.
            while app.worker.processed < len(users) or await kicks_finished(app.db) < len(users):
                if time.monotonic() > deadline:
                    raise BenchError(f"{label}: the removals did not finish within {REMOVAL_TIMEOUT:.0f} s")
                await asyncio.sleep(0.02)  # short: the CPU figure stops at the first poll that sees the end
            cpu = time.process_time() - cpu0
        finally:
            if profile is not None:
                profile.disable()
            await app.stop()
    calls = await control.calls(mark)
    result = analyse(label, set(users), calls, started)
    result.cpu_s = cpu
    return result


async def run_bare(
    users: Sequence[int], sandbox: Child, control: SandboxControl, concurrency: int
) -> Removals:
    info = sandbox.info
    group = int(info["group"])
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(info["url"])))
    pending = iter(users)

    async def worker() -> None:
        for uid in pending:
            await bot.ban_chat_member(group, uid)
            await bot.unban_chat_member(group, uid, only_if_banned=True)

    try:
        mark = await control.mark()
        started, cpu0 = time.time(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu0
    finally:
        await bot.session.close()
    result = analyse(f"bare aiogram, {concurrency} tasks", set(users), await control.calls(mark), started)
    result.cpu_s = cpu
    return result


# ---------------------------------------------------------------------------------- (c) queries
def _subscription_rows(
    n: int, n_users: int, first_user: int, due: int, now: datetime, offsets: tuple[timedelta, ...]
) -> list[tuple[Any, ...]]:
    """60% long expired; 40% active ending within a year; ``due`` active past end + grace, and ``due``
    active whose reminder is due (what a sweep that keeps up leaves between two passes)."""
    rng = random.Random(4)
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        user = first_user + i % n_users
        if i < due:  # due for expiry: ended 25-48 hours ago
            ends = now - timedelta(hours=rng.uniform(25, 48))
            status, reminder = "active", None
        elif i < 2 * due:  # reminder due: the 3-day reminder passed a few minutes ago
            ends = now + timedelta(days=3) - timedelta(minutes=rng.uniform(1, 30))
            status, reminder = "active", ends - timedelta(days=3)
        elif i % 10 < 6:
            ends = now - timedelta(days=rng.uniform(2, 700))
            status, reminder = "expired", None
        else:
            ends = now + timedelta(days=rng.uniform(0.5, 365))
            status, reminder = "active", next_reminder_at(ends, offsets, now)
        starts = ends - timedelta(days=30)
        rows.append((user, "standard", starts, ends, status, "payment", None, reminder, starts, starts))
    return rows


class Capture:
    """Records the SQL (and parameters) the real sweep functions send to the database."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def __call__(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        self.statements.append((statement, parameters))

    def first_select(self) -> tuple[str, Any]:
        for statement, params in self.statements:
            if statement.lstrip().upper().startswith("SELECT") and "FROM subscriptions" in statement:
                return statement, params
        raise BenchError("no SELECT on subscriptions was captured")


def with_limit(params: Sequence[Any]) -> list[Any]:
    """The captured parameters with the LIMIT (captured as 1) set back to the sweeps' batch size."""
    return [BATCH if type(p) is int and p == 1 else p for p in params]


async def time_query(
    conn: asyncpg.Connection, sql: str, params: Sequence[Any], repeat: int = 20
) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await conn.fetch(sql, *params)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


async def explain(conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> tuple[float, str]:
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
    lines = [r[0] for r in rows]
    ms = next(
        (float(line.split(":")[1].split()[0]) for line in lines if line.startswith("Execution Time")), -1.0
    )
    return ms, "\n".join(lines)


async def run_queries(opts: Options, report: Report) -> None:
    group = -1_000_000_000_001
    now = datetime.now(UTC)
    async with fresh_postgres() as url:
        db = await migrated(url)
        try:
            policy = Policy()
            plans = load_plans(None, (group,))
            async with db.write() as session:
                await plan_store.sync(session, plans, now)
            n_users = max(1, opts.rows // 2)
            console.print(f"(c) COPY {n_users} users and {opts.rows} subscriptions into PostgreSQL …")
            t0 = time.perf_counter()
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                first_user = 1_000_000
                await conn.copy_records_to_table(
                    "users",
                    records=(
                        (first_user + i, f"u{i}", f"User{i}", None, "en", False, None, now, now)
                        for i in range(n_users)
                    ),
                    columns=[
                        "id", "username", "first_name", "last_name", "language_code",
                        "is_whitelisted", "blocked_bot_at", "created_at", "updated_at",
                    ],
                )  # fmt: skip
                await conn.copy_records_to_table(
                    "subscriptions",
                    records=_subscription_rows(
                        opts.rows, n_users, first_user, opts.due, now, policy.reminder_offsets
                    ),
                    columns=[
                        "user_id", "plan_code", "starts_at", "ends_at", "status", "source", "order_id",
                        "next_reminder_at", "created_at", "updated_at",
                    ],
                )  # fmt: skip
                await conn.execute("ANALYZE")
                report.load_s = time.perf_counter() - t0
                ctx = ServiceContext(db, SystemClock(), {p.code: p for p in plans}, policy)
                capture = Capture()
                event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
                # One row each through the real functions, to capture their exact SQL and parameters.
                await sweep_expired(ctx, limit=1)
                expiry_sql = capture.first_select()
                capture.statements.clear()
                await sweep_reminders(ctx, limit=1)
                reminder_sql = capture.first_select()
                event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
                for name, (sql, params), function in (
                    ("expiry (sweep_expired)", expiry_sql, sweep_expired),
                    ("reminders (sweep_reminders)", reminder_sql, sweep_reminders),
                ):
                    # The parameters hold "now" as captured; the due rows are still due at that moment.
                    args = with_limit(params)
                    median, worst = await time_query(conn, sql, args)
                    ms, plan = await explain(conn, sql, args)
                    t1 = time.perf_counter()
                    await function(ctx, limit=50)
                    function_ms = (time.perf_counter() - t1) * 1000
                    report.queries.append(
                        QueryTiming(name, opts.due - 1, median, worst, ms, plan, function_ms)
                    )
                # Nothing due: what every pass of a sweep that keeps up sees.
                await conn.execute(
                    "UPDATE subscriptions SET status = 'expired', next_reminder_at = NULL "
                    "WHERE status = 'active' AND ends_at <= now() - interval '24 hours'"
                )
                await conn.execute(
                    "UPDATE subscriptions SET next_reminder_at = ends_at - interval '1 day' "
                    "WHERE status = 'active' AND next_reminder_at <= now()"
                )
                await conn.execute("ANALYZE subscriptions")
                for name, (sql, params) in (
                    ("expiry (sweep_expired)", expiry_sql),
                    ("reminders (sweep_reminders)", reminder_sql),
                ):
                    moment = datetime.now(UTC) - (policy.expiry_grace if "expiry" in name else timedelta())
                    args = [moment if isinstance(p, datetime) else p for p in with_limit(params)]
                    median, worst = await time_query(conn, sql, args)
                    ms, plan = await explain(conn, sql, args)
                    report.queries.append(QueryTiming(name, 0, median, worst, ms, plan))
            finally:
                await conn.close()
        finally:
            await db.dispose()


# ------------------------------------------------------------------------------------------- run
async def run(opts: Options) -> Report:
    report = Report(machine=machine(), options=asdict(opts))
    workdir = Path(tempfile.mkdtemp(prefix="subbot-bench-expiry-"))
    # The in-process app logs its warnings only (the removals log nothing at INFO anyway).
    logging.basicConfig(level=logging.WARNING)
    try:
        if "a" in opts.parts or "b" in opts.parts:
            n_a = opts.limited if "a" in opts.parts else 0
            n_b = opts.unlimited if "b" in opts.parts else 0
            total = n_a + 2 * n_b
            console.print(f"Telegram sandbox: {total} members who have started the bot …")
            sandbox = await roles.start(
                "telegram", "telegram", {"token": TOKEN, "users": total, "members": True}, workdir, 120
            )
            users: list[int] = sandbox.info["users"]
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                    control = SandboxControl(session, sandbox.info["url"])
                    if n_a:
                        await control.limits(True)
                        console.print(f"(a) {n_a} expiries at Telegram's limits (about {n_a / 10:.0f}+ s) …")
                        report.removals.append(
                            await run_app_removals(
                                "subbot, limits on", users[:n_a], sandbox, control, workdir, Limits()
                            )
                        )
                    if n_b:
                        await control.limits(False)
                        ours, bare = users[n_a : n_a + n_b], users[n_a + n_b :]
                        console.print(f"(b) {n_b} expiries, no limits …")
                        prof = cProfile.Profile(time.process_time) if opts.profile else None
                        report.removals.append(
                            await run_app_removals(
                                "subbot, no limits",
                                ours,
                                sandbox,
                                control,
                                workdir,
                                Limits(enabled=False),
                                prof,
                            )
                        )
                        if prof is not None:
                            kept = Path(tempfile.gettempdir()) / "subbot-expiry-b.prof"
                            prof.dump_stats(str(kept))  # for pstats: callers, other sort orders
                            report.notes.append(f"profile of (b) kept in {kept}")
                            out = io.StringIO()
                            stats = pstats.Stats(prof, stream=out).strip_dirs()
                            stats.sort_stats("tottime").print_stats(40)
                            stats.sort_stats("cumulative").print_stats(60)
                            report.profile = out.getvalue()
                        console.print(f"(b) bare aiogram loop, {n_b} removals …")
                        report.removals.append(await run_bare(bare, sandbox, control, opts.concurrency))
                    report.notes += [f"sandbox violation: {v}" for v in await control.violations()]
            finally:
                await sandbox.stop()
        if "c" in opts.parts:
            await run_queries(opts, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.machine["load_after"] = load_average()
    return report


def print_report(report: Report, opts: Options) -> None:
    from rich.table import Table

    m = report.machine
    if report.removals:
        table = Table(
            title="Expiry: removals (banChatMember + unbanChatMember) via the sandbox",
            caption="rate = removals / (first ban → last unban); steady = 10th to 90th percentile of unbans",
        )
        for col in (
            "run", "members", "bans ok", "unbans ok", "getChatMember", "429s", "other errors",
            "first ban → last unban s", "removals/s", "steady /s", "limited calls/s", "CPU ms/removal",
        ):  # fmt: skip
            table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
        for r in report.removals:
            table.add_row(
                r.label,
                str(r.members),
                str(r.bans_ok),
                str(r.unbans_ok),
                str(r.get_member),
                str(r.rate_limited),
                str(r.other_errors),
                f"{r.first_to_last_s:.1f}",
                f"{r.rate:.1f}",
                f"{r.steady_rate:.1f}",
                f"{r.limited_calls_per_s:.1f}",
                f"{r.cpu_ms_per_removal:.2f}",
            )
        console.print(table)
    limited = report.get("subbot, limits on")
    if limited is not None:
        limit = SANDBOX_GLOBAL_PER_S / 2
        share = limited.rate / limit
        console.print(
            f"(a) {limited.rate:.1f} removals/s = {share:.0%} of the sandbox's limit of {limit:.0f} "
            f"removals/s (30 calls/s, 2 limited calls per removal), aim ≥ {AIM_LIMITED:.0%}: "
            + ("[green]met[/]" if share >= AIM_LIMITED else "[red]not met[/]")
            + f"; 429s: {limited.rate_limited} (aim 0): "
            + ("[green]met[/]" if limited.rate_limited == 0 else "[red]not met[/]"),
            highlight=False,
        )
    ours, bare = (
        report.get("subbot, no limits"),
        next((r for r in report.removals if r.label.startswith("bare")), None),
    )
    if ours is not None and bare is not None and bare.rate > 0:
        ratio = ours.rate / bare.rate
        console.print(
            f"(b) subbot / bare = {ours.rate:.1f} / {bare.rate:.1f} = [bold]{ratio:.2f}[/] "
            f"(aim ≥ {AIM_BARE}): " + ("[green]met[/]" if ratio >= AIM_BARE else "[red]not met[/]"),
            highlight=False,
        )
    if report.queries:
        table = Table(title=f"(c) due-work queries on PostgreSQL, {opts.rows:,} subscriptions")
        for col in (
            "query",
            "due rows",
            "median ms (20 runs)",
            "max ms",
            "EXPLAIN ANALYZE ms",
            "function ms",
        ):
            table.add_column(col, justify="left" if col == "query" else "right")
        for q in report.queries:
            table.add_row(
                q.name,
                str(q.due_rows),
                f"{q.median_ms:.2f}",
                f"{q.max_ms:.2f}",
                f"{q.explain_ms:.3f}",
                "-" if q.function_ms is None else f"{q.function_ms:.0f} (limit 50)",
            )
        console.print(table)
        worst = max(q.max_ms for q in report.queries)
        console.print(
            f"(c) load (COPY + ANALYZE): {report.load_s or 0:.1f} s; slowest query run {worst:.1f} ms "
            f"(aim < {AIM_QUERY_MS:.0f} ms): "
            + ("[green]met[/]" if worst < AIM_QUERY_MS else "[red]not met[/]"),
            highlight=False,
        )
        for q in report.queries:
            console.rule(f"plan: {q.name}, {q.due_rows} due")
            console.print(q.plan, highlight=False, markup=False)
    console.print(
        f"machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}; load average {m['load_before']} "
        f"before, {m.get('load_after', '?')} after",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    if report.profile:
        console.rule("cProfile of subbot's removals in (b), CPU-time clock")
        console.print(report.profile, highlight=False, markup=False)


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench expiry", description=__doc__.split("\n\n")[0])
    p.add_argument("--limited", type=int, default=900, help="(a) expiries at Telegram's limits (900)")
    p.add_argument("--unlimited", type=int, default=2000, help="(b) expiries without limits (2000)")
    p.add_argument("--rows", type=int, default=200_000, help="(c) subscriptions in PostgreSQL (200000)")
    p.add_argument("--due", type=int, default=500, help="(c) rows due for expiry, and for a reminder (500)")
    p.add_argument("--parts", default="a,b,c", help="which parts to run (a,b,c)")
    p.add_argument("--concurrency", type=int, default=4, help="(b) bare loop tasks (4, = OUTBOX_CONCURRENCY)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    p.add_argument("--profile", action="store_true", help="cProfile subbot's run in (b) (CPU-time clock)")
    a = p.parse_args(list(argv))
    parts = tuple(x.strip() for x in a.parts.split(",") if x.strip())
    if not parts or any(x not in ("a", "b", "c") for x in parts):
        p.error("--parts takes a, b and/or c")
    if min(a.limited, a.unlimited, a.rows, a.concurrency) < 1 or not 2 <= a.due * 2 <= a.rows:
        p.error("sizes must be positive, and --due at most half of --rows")
    return Options(a.limited, a.unlimited, a.rows, a.due, parts, a.concurrency, a.json_out, a.profile)


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        with _runner() as runner:
            report = runner.run(run(opts))
    except BenchError as exc:
        console.print(f"[red]expiry benchmark failed:[/] {exc}", highlight=False)
        return 1
    print_report(report, opts)
    if opts.json_out:
        Path(opts.json_out).write_text(json.dumps(asdict(report), indent=2, default=str))
    problems = [
        f"{r.label}: {r.bans_ok} bans and {r.unbans_ok} unbans succeeded for {r.members} members"
        for r in report.removals
        if r.bans_ok != r.members or r.unbans_ok != r.members
    ]
    if problems:
        console.print("[red]the figures are not valid:[/]")
        for problem in problems:
            console.print(f"  {problem}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
