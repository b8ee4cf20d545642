"""In-process CPU and round trips of a card payment: apply the event, then the grant (not registered).

``python -m bench.profile_payments [--backend sqlite|postgres] [--n 500] [--concurrency 8]
[--profile] [--top 30] [--repeat 1]``

The Telegram sandbox runs in a child process; this process builds ``SubbotApp`` (production logging,
``Limits(enabled=False)``) on a fresh migrated database seeded like ``bench airwallex`` and measures
two phases separately, without HTTP:

* **apply**: ``card_payments.apply_event`` for ``--n`` verified ``payment_intent.succeeded`` events at
  ``--concurrency`` (what the webhook route does after the signature check);
* **grant**: the outbox worker's ``run_once`` until every ``grant_access`` job is done (an invite link
  and a "Payment received" message per payment).

CPU is ``time.process_time`` of this process (all threads); statements are counted with SQLAlchemy's
``before_cursor_execute`` (COMMIT/ROLLBACK and pool pings are not cursor executions: they are counted
separately as transactions). ``--profile`` runs cProfile with CPU time as its clock, so time spent
descheduled on a loaded machine is not charged to a function, and keeps each phase's profile in
``$TMPDIR/subbot-payments-{apply,grant}.prof``. ``--repeat`` runs several rounds of ``--n`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from bench import roles
from bench.airwallex_webhook import TOKEN, make_event, seed_orders
from bench.dbs import fresh_database, migrated

SECRET = "bench-profile-secret"


class Counting:
    """Counts statements by their first word, and transactions (commits) on the engine."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0

    def on_execute(self, *args: Any) -> None:
        words = str(args[2]).split(None, 1)
        self.statements[words[0].upper() if words else "?"] += 1

    def on_commit(self, *_: Any) -> None:
        self.commits += 1

    def total(self) -> int:
        return sum(self.statements.values())


async def run(backend: str, n: int, concurrency: int, profile: bool, top: int, repeat: int) -> None:
    from subbot.app import SubbotApp
    from subbot.config import load_settings
    from subbot.logging_setup import configure_logging
    from subbot.payments.airwallex.webhook import verify
    from subbot.services.card_payments import apply_event
    from subbot.store.models import OutboxJob
    from subbot.telegram.limiter import Limits

    workdir = Path(tempfile.mkdtemp(prefix="subbot-profile-payments-"))
    users = n * repeat + 20
    sandbox = await roles.start("telegram", "telegram", {"token": TOKEN, "users": users}, workdir)
    try:
        async with fresh_database(backend, workdir, "payments") as url:
            db = await migrated(url)
            try:
                orders = await seed_orders(db, sandbox.info["users"], int(sandbox.info["group"]))
            finally:
                await db.dispose()
            settings = load_settings(
                _env_file=None,
                bot_token=TOKEN,
                group_id=sandbox.info["group"],
                telegram_api_url=sandbox.info["url"],
                database_url=url,
                lock_dir=workdir,
                log_dir=workdir / "logs",
                airwallex_client_id="bench-client",
                airwallex_api_key="bench-api-key",
                airwallex_webhook_secret=SECRET,
                airwallex_base_url="http://127.0.0.1:9",
            )
            configure_logging(settings)
            app = SubbotApp(settings, limits=Limits(enabled=False))
            await app.prepare()
            now = datetime.now(UTC)
            deliveries = [make_event(SECRET, oid, now) for oid in orders]
            events = [
                verify(SECRET, d.headers["x-timestamp"], d.headers["x-signature"], d.body, app.clock.now())
                for d in deliveries
            ]
            warm = events[:20]
            for e in warm:
                await apply_event(app.ctx, e)
            while await app.worker.run_once():
                pass
            count = Counting()
            event.listen(app.db.engine.sync_engine, "before_cursor_execute", count.on_execute)
            event.listen(app.db.engine.sync_engine, "commit", count.on_commit)
            results: list[tuple[str, float, float, Counting, str]] = []

            async def phase(name: str, body: Any) -> None:
                count.statements.clear()
                count.commits = 0
                prof = cProfile.Profile(time.process_time) if profile else None
                c0, t0 = time.process_time(), time.perf_counter()
                if prof:
                    prof.enable()
                await body()
                if prof:
                    prof.disable()
                cpu, wall = time.process_time() - c0, time.perf_counter() - t0
                text = ""
                if prof:
                    prof.dump_stats(str(Path(tempfile.gettempdir()) / f"subbot-payments-{name}.prof"))
                    out = io.StringIO()
                    stats = pstats.Stats(prof, stream=out).strip_dirs()
                    stats.sort_stats("tottime").print_stats(top)
                    stats.sort_stats("cumulative").print_stats(top)
                    text = out.getvalue()
                snapshot = Counting()
                snapshot.statements, snapshot.commits = Counter(count.statements), count.commits
                results.append((name, cpu, wall, snapshot, text))

            async def grant_all() -> None:
                while await app.worker.run_once():
                    pass

            for round_ in range(repeat):
                timed = events[20 + round_ * n : 20 + (round_ + 1) * n]

                async def apply_all(timed: list[Any] = timed) -> None:
                    pending = iter(timed)

                    async def worker() -> None:
                        for e in pending:
                            await apply_event(app.ctx, e)

                    await asyncio.gather(*(worker() for _ in range(concurrency)))

                await phase("apply", apply_all)
                await phase("grant", grant_all)
            async with app.db.sessions() as s:
                done = await s.scalar(
                    select(func.count()).select_from(OutboxJob).where(OutboxJob.state == "done")
                )
            await app.stop()
            for name in ("apply", "grant"):
                cpus = sorted(cpu / n * 1000 for label, cpu, *_ in results if label == name)
                print(
                    f"{backend} {name}: CPU ms/event over {len(cpus)} rounds: min {cpus[0]:.2f}, all {cpus}"
                )
            for name, cpu, wall, c, text in results:
                print(
                    f"{backend} {name}: n={n} CPU {cpu / n * 1000:.2f} ms/event, wall {wall:.2f} s "
                    f"({n / wall:.0f}/s); statements/event {c.total() / n:.2f} "
                    f"({', '.join(f'{k} {v / n:.2f}' for k, v in sorted(c.statements.items()))}); "
                    f"commits/event {c.commits / n:.2f}"
                )
                if text:
                    print(text)
            print(f"jobs done: {done}")
    finally:
        await sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_payments", description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--repeat", type=int, default=1, help="rounds of n events each (min and all are printed)")
    a = p.parse_args(list(argv))
    asyncio.run(run(a.backend, a.n, a.concurrency, a.profile, a.top, a.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
