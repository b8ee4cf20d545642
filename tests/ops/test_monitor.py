"""Monitor checks, classified by the runbook's SEV levels, against real databases and the Telegram sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from subbot.config import Settings, load_settings
from subbot.domain.clock import ManualClock
from subbot.domain.plans import load_plans
from subbot.ops.checks import Severity, Status, exit_code
from subbot.ops.monitor import Monitor
from subbot.sandbox.telegram import TelegramSandbox
from subbot.store import outbox
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import Order, Payment, User

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "777101:monitor-sandbox-token-not-a-secret-abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tg:
    sb: TelegramSandbox
    url: str
    bot_id: int
    group: int
    owner: int


@pytest.fixture
async def tg() -> AsyncIterator[Tg]:
    sb = TelegramSandbox()
    bot_id = sb.add_bot(TOKEN, username="monitor_test_bot")
    owner = sb.add_user("Owner", username="owner")
    group = sb.add_group("Members", owner_id=owner)
    sb.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    async with sb.serve() as url:
        yield Tg(sb, url, bot_id, group, owner)
    await sb.aclose()
    assert sb.violations == [], sb.violations  # every call the monitor made was valid Bot API


def make_settings(tmp: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "database_url": database_url,
        "port": free_port(),  # nothing listens: webhook and dashboard checks see no server
        "lock_dir": tmp,
        "log_dir": tmp / "logs",
    }
    values.update(overrides)
    return load_settings(**values)


async def one(settings: Settings, name: str, clock: ManualClock | None = None) -> Any:
    async with Monitor(settings, clock=clock, alerts=False) as monitor:
        (result,) = await monitor.check([name])
    return result


# ------------------------------------------------------------------------------------------------ database
async def test_database_in_a_missing_directory_is_critical_and_nothing_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "subbot.db"
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{missing}")
    async with Monitor(settings, alerts=False) as monitor:
        results = await monitor.check(["database", "payment", "automation"])
    db, payment, automation = results
    assert db.status is Status.CRITICAL and db.severity is Severity.SEV1
    assert "does not exist" in db.summary
    assert payment.status is Status.UNKNOWN and automation.status is Status.UNKNOWN  # no alert storm
    assert exit_code(results) == 2
    assert not missing.parent.exists()


async def test_database_on_a_closed_port_is_critical(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://subbot:pw@127.0.0.1:{free_port()}/subbot"
    result = await one(make_settings(tmp_path, url), "database")
    assert result.status is Status.CRITICAL and result.severity is Severity.SEV1
    assert "unreachable" in result.summary and "pw" not in result.summary


async def test_database_without_schema_says_run_migrate(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    result = await one(make_settings(tmp_path, f"sqlite+aiosqlite:///{path}"), "database")
    assert result.status is Status.CRITICAL
    assert "run `subbot migrate`" in result.summary


async def test_database_healthy(db: Database, db_url: str, tmp_path: Path) -> None:
    result = await one(make_settings(tmp_path, db_url), "database")
    assert result.status is Status.OK, result.summary
    assert result.details["query_ms"] < 5000 and result.latency_ms is not None


async def test_runbook_command_exits_2_when_the_database_is_gone(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/nothing/here.db",
        "LOCK_DIR": str(tmp_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/monitor_production.py",
        "--check",
        "database",
        "--json",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["status"] == "critical"
    assert report["results"][0]["severity"] == "SEV-1"


# ------------------------------------------------------------------------------------------------ bot
async def test_bot_ok_then_failing_is_critical(tg: Tg, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db", bot_token=TOKEN, telegram_api_url=tg.url
    )
    healthy = await one(settings, "bot")
    assert healthy.status is Status.OK, healthy.summary
    assert healthy.details["username"] == "monitor_test_bot"
    tg.sb.faults.fail_next(1, status=500, methods=["getMe"])
    failing = await one(settings, "bot")
    assert failing.status is Status.CRITICAL and failing.severity is Severity.SEV1
    assert TOKEN not in failing.summary


async def test_bot_with_an_unknown_token_is_critical(tg: Tg, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/x.db",
        bot_token="999999:unknown-token-not-a-secret-abcdefghijkl",
        telegram_api_url=tg.url,
    )
    result = await one(settings, "bot")
    assert result.status is Status.CRITICAL
    assert "invalid" in result.summary
    assert tg.sb.violations == ["getMe: unknown bot token"]  # deliberate here
    tg.sb.violations.clear()


async def test_bot_rights_missing_is_sev2(tg: Tg, tmp_path: Path) -> None:
    weak = tg.sb.add_group("Weak", owner_id=tg.owner)
    tg.sb.set_admin(weak, tg.bot_id, can_invite_users=True, can_restrict_members=False)
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/x.db",
        bot_token=TOKEN,
        telegram_api_url=tg.url,
        group_id=tg.group,
        extra_chat_ids=str(weak),
    )
    result = await one(settings, "admin")
    assert result.status is Status.DEGRADED and result.severity is Severity.SEV2
    assert "can_restrict_members" in result.summary
    assert result.details["chats"][str(tg.group)] == "ok"


# ------------------------------------------------------------------------------------------------ payments
async def seed_payments(db: Database, clock: ManualClock, succeeded: int, failed: int) -> None:
    now = clock.now()
    plans = load_plans(None, (-1001,))
    async with db.write() as session:
        await plan_store.sync(session, tuple(plans), now)
        session.add(User(id=42, first_name="Payer", created_at=now, updated_at=now))
        await session.flush()
        for i in range(succeeded + failed):
            ok = i < succeeded
            session.add(
                Order(
                    id=f"order{i}",
                    user_id=42,
                    plan_code=plans[0].code,
                    provider="airwallex",
                    amount_minor=1000,
                    currency="USD",
                    status="paid" if ok else ("failed" if i % 2 else "amount_mismatch"),
                    created_at=now - timedelta(minutes=10),
                    expires_at=now + timedelta(minutes=50),
                )
            )
            await session.flush()
            if ok:
                session.add(
                    Payment(
                        order_id=f"order{i}",
                        user_id=42,
                        provider="airwallex",
                        provider_payment_id=f"int_{i}",
                        amount_minor=1000,
                        currency="USD",
                        created_at=now - timedelta(minutes=5),
                    )
                )


async def test_payment_success_rate_80_percent_is_sev2(db: Database, db_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    await seed_payments(db, clock, succeeded=8, failed=2)
    result = await one(make_settings(tmp_path, db_url), "payment", clock)
    assert result.status is Status.DEGRADED and result.severity is Severity.SEV2
    assert result.details["success_rate"] == 0.8
    assert "80%" in result.summary
    clock.advance(timedelta(hours=2))  # out of the window: nothing to judge
    later = await one(make_settings(tmp_path, db_url), "payment", clock)
    assert later.status is Status.OK


async def test_payment_all_failing_is_sev1(db: Database, db_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    await seed_payments(db, clock, succeeded=0, failed=6)
    result = await one(make_settings(tmp_path, db_url), "payment", clock)
    assert result.status is Status.CRITICAL and result.severity is Severity.SEV1


async def test_airwallex_without_webhook_secret_is_sev2(db: Database, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        airwallex_client_id="client",
        airwallex_api_key="key-for-tests-0123456789",
        airwallex_base_url=f"http://127.0.0.1:{free_port()}",  # unreachable as well
    )
    result = await one(settings, "payment")
    assert result.status is Status.DEGRADED and result.severity is Severity.SEV2
    assert "AIRWALLEX_WEBHOOK_SECRET" in result.summary and "unreachable" in result.summary


# ------------------------------------------------------------------------------------------------ automation
async def test_outbox_stuck_for_15_minutes_is_sev2(db: Database, db_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with db.write() as session:
        await outbox.enqueue(session, "send_message", "stuck-1", {"user_id": 1, "text": "hi"}, clock.now())
    settings = make_settings(tmp_path, db_url)
    clock.advance(timedelta(minutes=10))
    assert (await one(settings, "automation", clock)).status is Status.OK
    clock.advance(timedelta(minutes=6))
    result = await one(settings, "automation", clock)
    assert result.status is Status.DEGRADED and result.severity is Severity.SEV2
    assert "outbox stuck" in result.summary
    assert result.details["outbox_backlog"] == 1


# ------------------------------------------------------------------------------------------------ resources
async def test_memory_over_the_limit_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("MEMORY_LIMIT_MB", "100000")
    assert (await one(settings, "resources")).status is Status.OK
    monkeypatch.setenv("MEMORY_LIMIT_MB", "1")
    result = await one(settings, "resources")
    assert result.status is Status.DEGRADED and result.severity is Severity.SEV2
    assert result.details["limit_source"] == "MEMORY_LIMIT_MB"


async def test_full_check_without_a_server_reports_each_component(
    tg: Tg, db: Database, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, db_url, bot_token=TOKEN, telegram_api_url=tg.url, group_id=tg.group)
    async with Monitor(settings, alerts=False) as monitor:
        results = {r.component: r for r in await monitor.check(["all"])}
    assert set(results) == {
        "bot",
        "database",
        "payment",
        "webhook",
        "admin",
        "dashboard",
        "automation",
        "resources",
    }
    assert results["bot"].status is Status.OK
    assert results["database"].status is Status.OK
    assert results["admin"].status is Status.OK
    assert results["webhook"].status is Status.CRITICAL  # no `subbot run` listening
    assert results["dashboard"].status is Status.UNKNOWN  # never fails the run on its own
