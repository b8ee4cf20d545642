"""Dashboard read side (issue 6): member search and list at 100,000 members, overview, CSV export.

``python -m bench dashboard [--members 100000] [--repeat 15] [--backends sqlite,postgres]
[--no-indexes] [--json PATH]``

For each backend, a fresh database migrated with our migrations gets ``--members`` users in one bulk
insert (executemany on SQLite, COPY on PostgreSQL) with a realistic mix: 55 % active, 1 % lifetime
plan, 1 % whitelisted, 30 % expired (some revoked), 13 % never paid; one paid order and payment per
subscription (two currencies), plus failed and pending orders. The dashboard's indexes come
from migration 0007 (``--no-indexes`` drops them, to show what they buy) and, on PostgreSQL only,
``ANALYZE`` (autovacuum does it in production; SQLite databases of subbot are never ANALYZEd, so
neither is this one).

Timed (``--repeat`` runs each after one warm-up; server time = the awaited call in this process,
which includes the driver round trips): ``search_members`` for the list page (no query), an id, an
``@username`` prefix, a bare word (username prefix or name), a name contains, each status filter, a
plan filter and page 1000; ``overview``; and the two CSV exports (rows/s). Prints p50/p95/max per
query. Checks: every search returns what the data set says it must (e.g. the id finds its member,
the counts of the status filters add up to the number of members), or the run exits 1. The aim of the
issue is p95 < 200 ms for every search at 100,000 members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from bench.dbs import asyncpg_dsn, fresh_database, migrated
from bench.procs import BenchError
from bench.webhook_ingest import load_average, machine
from subbot.domain.clock import ManualClock
from subbot.domain.money import Money
from subbot.domain.plans import Plan
from subbot.ops.data.fastio import insert_rows
from subbot.services.dashboard_queries import members_csv, overview, payments_csv, search_members
from subbot.store import plans as plan_store
from subbot.store.db import Database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIRST_ID = 100_000_000
PLANS = {"basic": (7, 100, "USD"), "standard": (30, 200, "USD"), "premium": (180, 900, "EUR")}
FIRST = ["Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kira",
         "Luca", "Maria", "Nikolai", "Olga", "Pedro", "Qiu", "Rosa", "Sven", "Tanya", "Иван", "Мария",
         "Zoë", "José", "Ørjan", "Анастасия", "Li", "Yuki", "Ahmed", "Fatima"]  # fmt: skip
LAST = ["Smith", "Ivanova", "García", "Müller", "Rossi", "Kowalski", "Petrov", "Tanaka", "Nguyen",
        "Silva", "Johansson", "Смирнов", None, None]  # fmt: skip

#: The dashboard's indexes (migration 0007); ``--no-indexes`` drops them to show what they buy.
INDEXES = ("ix_users_username_ci", "ix_users_created_at", "ix_subscriptions_status_ends_at_user_id")


def _dt(dialect: str, moment: datetime | None) -> Any:
    if moment is None or dialect != "sqlite":
        return moment
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")  # how UTCDateTime stores it


def dataset(n: int, dialect: str, seed: int = 6) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table (driver values), deterministic for a seed; see the module docstring for the mix."""
    rnd = random.Random(seed)
    d = lambda moment: _dt(dialect, moment)  # noqa: E731
    users, orders, payments, subs = [], [], [], []
    for i in range(n):
        uid = FIRST_ID + i
        joined = NOW - timedelta(days=730 * (n - i) / n, seconds=rnd.randrange(3600))
        name, last = rnd.choice(FIRST), rnd.choice(LAST)
        username = f"{name.lower()}_{i}" if name.isascii() and rnd.random() < 0.7 else None
        roll = rnd.random()
        users.append((uid, username, name, last, "en", roll >= 0.99, None, d(joined), d(joined)))
        if roll >= 0.86:
            continue  # never paid (13 %), or whitelisted (1 %): no subscription
        plan = rnd.choice(("basic", "standard", "standard", "premium"))
        days, amount, currency = PLANS[plan]
        start = min(joined + timedelta(hours=1), NOW - timedelta(minutes=1))
        ends: datetime | None
        if roll < 0.55:  # active: ends ahead
            ends, status = NOW + timedelta(days=rnd.randrange(1, days + 1)), "active"
        elif roll < 0.85:  # ended in the last two years (a few revoked)
            ends = min(start + timedelta(days=days), NOW - timedelta(hours=1))
            status = "revoked" if rnd.random() < 0.05 else "expired"
        else:  # lifetime (1 %)
            ends, status = None, "active"
        order_id = f"o{i:011d}"
        orders.append((order_id, uid, plan, "airwallex", amount, currency,
                       "paid", None, d(start), d(start + timedelta(hours=1)), d(start)))  # fmt: skip
        payments.append((order_id, uid, "airwallex", f"int_{i}", amount, currency, "succeeded", d(start),
                         None, 0))  # fmt: skip
        subs.append((uid, plan, d(start), d(ends), status, "payment", order_id, None, d(start),
                     d(start if status != "revoked" else (ends or NOW) - timedelta(days=1))))  # fmt: skip
        if rnd.random() < 0.03:  # a failed or pending card attempt
            state = "failed" if rnd.random() < 0.7 else "pending"
            orders.append((f"f{i:011d}", uid, plan, "airwallex", amount, currency, state, None,
                           d(NOW - timedelta(days=rnd.randrange(30))), d(NOW), None))  # fmt: skip
    return {"users": users, "orders": orders, "payments": payments, "subscriptions": subs}


COLUMNS = {
    "users": ["id", "username", "first_name", "last_name", "language_code", "is_whitelisted",
              "blocked_bot_at", "created_at", "updated_at"],
    "orders": ["id", "user_id", "plan_code", "provider", "amount_minor", "currency", "status",
               "provider_ref", "created_at", "expires_at", "paid_at"],
    "payments": ["order_id", "user_id", "provider", "provider_payment_id", "amount_minor", "currency",
                 "status", "created_at", "refunded_at", "refunded_minor"],
    "subscriptions": ["user_id", "plan_code", "starts_at", "ends_at", "status", "source", "order_id",
                      "next_reminder_at", "created_at", "updated_at"],
}  # fmt: skip


async def seed(db: Database, n: int, indexes: bool) -> tuple[float, dict[str, int]]:
    """Fill the database; returns (seconds, rows per table)."""
    plans = tuple(Plan(c, c.title(), d, None, Money(m, cur), (-1001,)) for c, (d, m, cur) in PLANS.items())
    start = time.perf_counter()
    async with db.write() as session:
        await plan_store.sync(session, plans, NOW)
    data = dataset(n, db.dialect)
    async with db.write() as session:
        for table, rows in data.items():
            for at in range(0, len(rows), 20_000):
                await insert_rows(session, _table(table), COLUMNS[table], rows[at : at + 20_000])
    async with db.engine.connect() as conn:
        for name in [] if indexes else INDEXES:
            await conn.execute(text(f"DROP INDEX {name}"))
        if db.dialect == "postgresql":
            await conn.execute(text("ANALYZE"))
        await conn.commit()
    return time.perf_counter() - start, {t: len(r) for t, r in data.items()}


def _table(name: str) -> Any:
    from subbot.store.models import Base

    return Base.metadata.tables[name]


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


class ServerCpu:
    """CPU milliseconds used so far by the PostgreSQL backends serving this database (0 on SQLite).

    Read from /proc (the server runs on this machine): robust to a busy machine, unlike wall time.
    Parallel workers are not counted, which is why the benchmark turns them off by default.
    """

    def __init__(self, url: str, backend: str) -> None:
        self.url, self.backend = url, backend
        self.conn: asyncpg.Connection | None = None

    async def __call__(self) -> float:
        if self.backend != "postgres":
            return 0.0
        if self.conn is None:
            self.conn = await asyncpg.connect(asyncpg_dsn(self.url))
        pids = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return sum(_cpu_ticks(pid) for (pid,) in pids) * 1000 / os.sysconf("SC_CLK_TCK")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int, server: ServerCpu) -> dict[str, Any]:
    """Wall p50/p95/max of ``repeat`` runs after one warm-up; CPU per run (this process + the server)."""
    result = await fn()
    wall = []
    c0, s0 = time.process_time(), await server()
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        wall.append((time.perf_counter() - t0) * 1000)
    cpu = ((time.process_time() - c0) * 1000 + await server() - s0) / repeat
    wall.sort()
    p95 = wall[min(len(wall) - 1, round(0.95 * (len(wall) - 1)))]
    return {"p50": statistics.median(wall), "p95": p95, "max": wall[-1], "cpu": cpu, "result": result}


async def bench_backend(backend: str, opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    clock = ManualClock(NOW)
    async with fresh_database(backend, workdir, "dashboard") as url:
        db = await migrated(url)
        server = ServerCpu(url, backend)
        try:
            seconds, rows = await seed(db, opts.members, not opts.no_indexes)
            if backend == "postgres" and not opts.pg_parallel:
                name = url.rsplit("/", 1)[1]
                async with db.engine.connect() as conn:
                    await conn.execute(
                        text(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = 0')
                    )
                    await conn.commit()
                await db.dispose()  # new connections pick the setting up
            print(f"{backend}: seeded {rows} in {seconds:.1f} s (load {load_average()})", flush=True)
            return {"backend": backend, "seed_seconds": seconds, "rows": rows,
                    "queries": await run_queries(db, clock, opts, server)}  # fmt: skip
        finally:
            await server.close()
            await db.dispose()


def _search(db: Database, clock: ManualClock, query: str = "", **kw: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: search_members(db, query, clock=clock, **kw)


async def run_queries(
    db: Database, clock: ManualClock, opts: argparse.Namespace, server: ServerCpu
) -> list[dict[str, Any]]:
    n, probe = opts.members, FIRST_ID + opts.members // 3
    cases: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[Any], bool]]] = [
        ("list, page 1", _search(db, clock), lambda p: p.total == n and len(p.rows) == 50),
        ("id", _search(db, clock, str(probe)), lambda p: [r.user_id for r in p.rows] == [probe]),
        ("@username prefix '@anna_1'", _search(db, clock, "@anna_1"),
         lambda p: p.rows and all(r.username.startswith("anna_1") for r in p.rows)),
        ("word 'greta' (username or name)", _search(db, clock, "greta"), lambda p: len(p.rows) == 50),
        ("name contains 'iva'", _search(db, clock, "iva"), lambda p: len(p.rows) == 50),
        ("name contains 'мария'", _search(db, clock, "мария"), lambda p: len(p.rows) == 50),
        ("name, no match 'zzzq'", _search(db, clock, "zzzq"), lambda p: p.total == 0),
        ("status active", _search(db, clock, status="active"), lambda p: len(p.rows) == 50),
        ("status expired", _search(db, clock, status="expired"), lambda p: len(p.rows) == 50),
        ("status lifetime", _search(db, clock, status="lifetime"), lambda p: len(p.rows) == 50),
        ("status never", _search(db, clock, status="never"), lambda p: len(p.rows) == 50),
        ("plan premium + active", _search(db, clock, status="active", plan_id="premium"),
         lambda p: all(r.plan == "premium" for r in p.rows)),
        ("list, page 1000", _search(db, clock, page=1000),
         lambda p: len(p.rows) == min(50, max(0, n - 49_950)) and p.page == 1000),
        ("overview (not a search)", lambda: overview(db, clock), lambda o: o.active_members > 0),
    ]  # fmt: skip
    results, totals = [], {}
    print(f"  {'ms':<34} {'p50':>6} {'p95':>6} {'max':>6} {'CPU/call':>8}")
    for name, fn, check in cases:
        stats = await timed(fn, opts.repeat, server)
        result = stats.pop("result")
        if not check(result):
            raise BenchError(f"{db.dialect}: {name}: unexpected result {result!r:.300}")
        if name.startswith("status "):
            totals[name] = result.total
        results.append({"query": name, **stats})
        print(
            f"  {name:<34} {stats['p50']:6.1f} {stats['p95']:6.1f} {stats['max']:6.1f} {stats['cpu']:8.1f}",
            flush=True,
        )
    if sum(totals.values()) != n:
        raise BenchError(f"{db.dialect}: the status filters do not add up to {n}: {totals}")
    for name, export in (("members CSV", lambda: members_csv(db, clock=clock)),
                         ("payments CSV", lambda: payments_csv(db))):  # fmt: skip
        t0, count = time.perf_counter(), -1  # the header is not a row
        async for chunk in export():
            count += chunk.count("\r\n")  # one CRLF per record: no name in this data set has a newline
        seconds = time.perf_counter() - t0
        results.append({"query": name, "rows": count, "seconds": seconds})
        print(f"  {name:<34} {count:,} rows in {seconds:.1f} s ({count / seconds:,.0f} rows/s)")
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-indexes", action="store_true", help="skip the proposed indexes")
    parser.add_argument(
        "--pg-parallel", action="store_true", help="keep PostgreSQL's parallel workers (off by default)"
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    opts = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": machine(), "options": vars(opts) | {"json": None}, "runs": []}
    try:
        with tempfile.TemporaryDirectory(prefix="subbot-bench-dashboard-") as tmp:
            for backend in opts.backends.split(","):
                report["runs"].append(asyncio.run(bench_backend(backend.strip(), opts, Path(tmp))))
    except BenchError as exc:
        print(f"dashboard benchmark failed: {exc}", file=sys.stderr)
        return 1
    slow = [(r["backend"], q["query"]) for r in report["runs"] for q in r["queries"]
            if "p95" in q and not q["query"].startswith("overview") and q["p95"] >= 200]  # fmt: skip
    print("every search p95 < 200 ms" if not slow else f"p95 >= 200 ms: {slow}")
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
