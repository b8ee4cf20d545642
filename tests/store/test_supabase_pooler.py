"""Through a transaction pooler like Supabase's (PgBouncer, port 6543), where prepared statements do not
survive between transactions: migrations and the payment path must work with subbot's pooler settings.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select, text

from subbot.config import load_settings
from subbot.domain.clock import ManualClock
from subbot.domain.plans import load_plans
from subbot.services import checkout, payments
from subbot.services.context import ServiceContext
from subbot.store import plans as plan_store
from subbot.store import users
from subbot.store.db import create_database
from subbot.store.migrate import SchemaState, schema_state, upgrade
from subbot.store.models import Payment, Subscription
from tests.conftest import PG_DSN, postgres_or_skip

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def pooler_port() -> Iterator[int]:
    if not Path(PGBOUNCER).exists():
        if os.environ.get("CI") == "true" or os.environ.get("SUBBOT_TEST_POSTGRES") == "1":
            pytest.fail("pgbouncer is a prerequisite of the PostgreSQL tests: apt-get install -y pgbouncer")
        pytest.skip("pgbouncer not installed (apt-get install -y pgbouncer)")
    postgres_or_skip()
    port = 6543 if _port_free(6543) else 16543
    work = Path(tempfile.mkdtemp(prefix="subbot-pgbouncer-"))
    (work / "users.txt").write_text('"postgres" ""\n')
    (work / "pgbouncer.ini").write_text(
        "[databases]\n* = host=127.0.0.1 port=5432 user=postgres\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\nauth_file = {work}/users.txt\n"
        f"pool_mode = transaction\nunix_socket_dir =\nlogfile = {work}/pgbouncer.log\n"
        f"pidfile = {work}/pgbouncer.pid\nmax_client_conn = 200\ndefault_pool_size = 5\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    as_user: list[str] = []
    if os.geteuid() == 0:  # pgbouncer refuses to run as root: drop to postgres, who must read the files
        for path in (work, *work.iterdir()):
            shutil.chown(path, "postgres")
        as_user = ["-u", "postgres"]
    proc = subprocess.Popen([PGBOUNCER, *as_user, str(work / "pgbouncer.ini")])
    try:
        for _ in range(200):
            if not _port_free(port):
                break
            if proc.poll() is not None:
                pytest.fail(f"pgbouncer exited: {(work / 'pgbouncer.log').read_text()[-500:]}")
            subprocess.run(["sleep", "0.05"], check=True)  # process start-up: no asyncio loop here
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
async def pooled_url(pooler_port: int) -> AsyncIterator[str]:
    name = f"subbot_pool_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield f"postgresql://postgres@127.0.0.1:{pooler_port}/{name}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_migrations_and_payments_through_a_transaction_pooler(
    pooled_url: str, pooler_port: int
) -> None:
    overrides = {} if pooler_port == 6543 else {"database_statement_cache": False}
    settings = load_settings(_env_file=None, database_url=pooled_url, **overrides)
    assert settings.database_statement_cache_enabled is False
    db = create_database(settings.database_url, pooler=not settings.database_statement_cache_enabled)
    try:
        await upgrade(db)
        assert (await schema_state(db))[0] is SchemaState.CURRENT
        clock = ManualClock()
        plans = load_plans(None, (-1001,))
        ctx = ServiceContext(db, clock, {p.code: p for p in plans})
        async with ctx.transaction() as session:
            await plan_store.sync(session, plans, clock.now())
            await users.upsert(session, 42, clock.now(), first_name="Pia")
        invoice = await checkout.create_stars_order(ctx, 42, "standard")

        async def pay() -> payments.ApplyResult:
            return await payments.apply_stars_payment(
                ctx, user_id=42, payload=invoice.order_id, charge_id="ch-pool", total_amount=100,
                currency="XTR", raw={},
            )  # fmt: skip

        results = await asyncio.gather(*(pay() for _ in range(8)))
        assert sorted(r.outcome.value for r in results).count("applied") == 1
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Payment)) == 1
            assert await session.scalar(select(func.count()).select_from(Subscription)) == 1
            # Many short transactions over a handful of server connections: no prepared-statement clashes.
            values = await asyncio.gather(*(_one(db, i) for i in range(100)))
        assert values == list(range(100))
    finally:
        await db.dispose()


async def _one(db: object, i: int) -> int:
    async with db.sessions() as session:  # type: ignore[attr-defined]
        return int((await session.execute(text("SELECT CAST(:x AS INTEGER)"), {"x": i})).scalar_one())
