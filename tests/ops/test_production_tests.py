"""Production tests against a live subbot on the sandboxes: they pass, fail readably, damage nothing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from subbot.config import load_settings
from subbot.ops.prodtests.core import Status, TestResult, report_json, report_markdown
from subbot.ops.production_tests import TEST_NAMES, ProductionTestSuite, main
from subbot.store.db import create_database
from subbot.store.models import Base, Flag, Order, PlanRow, User
from tests.e2e.card_world import SECRET, card_world
from tests.e2e.conftest import TOKEN, World, free_port
from tests.e2e.conftest import world as e2e_world  # noqa: F401 - registers the fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(e2e_world: World) -> World:  # noqa: F811 - tests/e2e's sandbox world, by its usual name
    return e2e_world


def by_name(results: list[TestResult]) -> dict[str, TestResult]:
    return {r.name: r for r in results}


async def table_counts(db_url: str) -> dict[str, int]:
    db = create_database(db_url)
    try:
        async with db.sessions() as s:
            return {
                t.name: int(await s.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables
            }
    finally:
        await db.dispose()


async def run_suite(settings: Any, names: tuple[str, ...] = TEST_NAMES, **kw: Any) -> dict[str, TestResult]:
    suite = ProductionTestSuite(settings, **kw)
    await suite.initialize()
    try:
        return by_name(await suite.run(names))
    finally:
        await suite.close()


async def test_all_pass_against_a_card_deployment_and_nothing_changes(world: World) -> None:
    world.clock.set(datetime.now(UTC))  # the webhook's timestamp window is checked on the app's clock
    async with card_world(world) as cw:
        alice = world.user("Alice")
        paid = await cw.pay_on_page(await cw.choose_card(alice))  # real data: order, payment, subscription
        assert paid.status_code == 200
        await world.reply(alice, lambda m: "Payment received" in (m.get("text") or ""))
        before = await table_counts(world.db_url)
        results = await run_suite(cw.app.settings)
        after = await table_counts(world.db_url)
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(TEST_NAMES, Status.PASSED), {
        n: (r.summary, r.details) for n, r in results.items()
    }
    assert before == after  # every test row was rolled back, nothing else was written
    assert "Airwallex login ok" in " ".join(results["payment"].details)
    assert "the bot has can_invite_users and can_restrict_members" in results["admin"].summary
    assert any("signed malformed JSON" in d and "400 ✓" in d for d in results["error"].details)
    assert "p99" in results["load"].summary
    assert "unsigned event refused with 401" in results["webhook"].summary
    assert "polling mode" in results["bot"].summary


async def test_webhook_mode_bot_check_and_public_url(world: World) -> None:
    world.clock.set(datetime.now(UTC))
    async with world.serving(webhook=True, airwallex_webhook_secret=SECRET) as (app, base):
        results = await run_suite(app.settings, ("bot", "webhook", "error"))
    assert results["bot"].status is Status.PASSED and "webhook mode" in results["bot"].summary
    assert results["webhook"].status is Status.PASSED and base in results["webhook"].summary
    assert results["error"].status is Status.PASSED


async def test_admin_failure_is_readable(world: World) -> None:
    no_rights = world.sandbox.add_group("No rights", owner_id=world.user("Owner2"))
    world.sandbox.add_member(no_rights, world.bot_id)
    weak = world.sandbox.add_group("Weak admin", owner_id=world.user("Owner3"))
    world.sandbox.set_admin(weak, world.bot_id, can_invite_users=True, can_restrict_members=False)
    settings = world.settings(extra_chat_ids=[no_rights, weak, -100999])
    results = await run_suite(settings, ("admin",))
    admin = results["admin"]
    assert admin.status is Status.FAILED and admin.summary.startswith("3 of 4 chat(s) need attention")
    text = "\n".join(admin.details)
    assert f"chat {world.group} 'Members' (supergroup): ok" in text
    assert f"chat {no_rights} 'No rights' (supergroup): the bot is not an administrator" in text
    assert "lacks can_restrict_members" in text
    assert "chat -100999: cannot check" in text
    assert TOKEN not in text + admin.summary


async def test_bot_check_flags_a_webhook_left_behind(world: World) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{world.url}/bot{TOKEN}/setWebhook", json={"url": "https://example.org/hook"})
        assert r.json()["ok"]
    results = await run_suite(world.settings(), ("bot",))
    assert results["bot"].status is Status.FAILED
    assert "PUBLIC_URL is not set" in results["bot"].summary


async def test_without_a_server_http_tests_skip_with_a_reason(world: World) -> None:
    port = free_port()
    results = await run_suite(world.settings(port=port), ("error", "load", "webhook"))
    for name in ("error", "load", "webhook"):
        assert results[name].status is Status.SKIPPED
        assert f"no subbot answers on http://127.0.0.1:{port}" in results[name].summary


async def test_unreachable_public_url_fails_the_webhook_test(world: World) -> None:
    settings = world.settings(public_url=f"http://127.0.0.1:{free_port()}")
    results = await run_suite(settings, ("webhook", "load"))
    assert results["webhook"].status is Status.FAILED and "does not answer" in results["webhook"].summary
    assert results["load"].status is Status.SKIPPED


async def test_payment_success_rate_and_bad_airwallex_credentials(world: World) -> None:
    from subbot.sandbox.airwallex import AirwallexSandbox

    app = await world.start(bot=False, workers=False)
    now = datetime.now(UTC)
    async with app.db.write() as s:
        s.add(User(id=5, first_name="P", created_at=now, updated_at=now))
        await s.flush()
        plan = (await s.scalars(select(PlanRow.code))).first()
        for i in range(25):
            s.add(
                Order(
                    id=f"o{i}",
                    user_id=5,
                    plan_code=plan,
                    provider="airwallex",
                    amount_minor=100,
                    currency="USD",
                    status="paid" if i < 20 else "cancelled",
                    created_at=now - timedelta(hours=1),
                    expires_at=now,
                )
            )
    aw = AirwallexSandbox(client_id="c", api_key="right-key", webhook_secret=SECRET)
    async with aw.serve() as aw_url:
        settings = world.settings(
            airwallex_client_id="c", airwallex_api_key="wrong-key", airwallex_base_url=aw_url
        )
        payment = (await run_suite(settings, ("payment",)))["payment"]
    assert payment.status is Status.FAILED
    assert "Airwallex refused the credentials" in payment.summary
    text = "\n".join(payment.details)
    assert "AIRWALLEX_WEBHOOK_SECRET is not set" in text
    assert "success rate 80.0%" in text and "below 95%" in text
    assert "wrong-key" not in text + payment.summary


async def test_database_problems_are_failures_not_crashes(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    settings = load_settings(_env_file=None, database_url=f"sqlite:///{missing}")
    results = await run_suite(settings, ("database", "subscription", "payment", "bot"))
    assert results["database"].status is Status.FAILED and "does not exist" in results["database"].summary
    assert results["subscription"].status is Status.FAILED
    assert results["bot"].status is Status.SKIPPED and results["bot"].summary == "BOT_TOKEN is not set"
    assert not missing.exists()  # the tests never create a database

    empty = tmp_path / "empty.db"
    create = create_database(f"sqlite+aiosqlite:///{empty}")
    async with create.engine.begin() as conn:
        await conn.exec_driver_sql("SELECT 1")
    await create.dispose()
    settings = load_settings(_env_file=None, database_url=f"sqlite:///{empty}")
    results = await run_suite(settings, ("database",))
    assert (
        results["database"].status is Status.FAILED and "run `subbot migrate`" in results["database"].summary
    )


async def test_initialize_makes_no_network_call(world: World) -> None:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        raise AssertionError("no network during initialize()")

    app = await world.start(bot=False, workers=False)
    suite = ProductionTestSuite(app.settings, transport=httpx.MockTransport(refuse))
    await suite.initialize()
    assert suite.db_error is None and calls == []
    async with suite.db.sessions() as s:  # usable straight away
        assert await s.scalar(select(func.count()).select_from(Flag)) is not None
    await suite.close()


async def test_reports_json_and_markdown(world: World, tmp_path: Path) -> None:
    app = await world.start(bot=False, workers=False)
    suite = ProductionTestSuite(app.settings)
    await suite.initialize()
    results = await suite.run(["database", "admin", "load"])
    await suite.close()
    data = json.loads(report_json(suite, results))
    assert data["summary"] == {"passed": 2, "failed": 0, "skipped": 1} and data["ok"] is True
    assert [r["name"] for r in data["results"]] == ["database", "admin", "load"]
    assert data["results"][2]["status"] == "skipped" and data["results"][2]["summary"]
    md = report_markdown(suite, results)
    assert "| database | ✓ passed |" in md and "| load | – skipped |" in md and "## database" in md
    assert TOKEN not in md + json.dumps(data)


def test_cli_usage_errors() -> None:
    assert main([]) == 2
    assert main(["--test", "nonsense"]) == 2
    assert main(["--all", "--report", "report.txt"]) == 2


@pytest.fixture
async def served(world: World) -> AsyncIterator[tuple[World, str]]:
    world.clock.set(datetime.now(UTC))
    async with world.serving(airwallex_webhook_secret=SECRET) as (_, base):
        yield world, base


async def test_script_exit_codes_table_and_report(served: tuple[World, str], tmp_path: Path) -> None:
    import asyncio

    world, base = served
    port = base.rsplit(":", 1)[1]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_", "PUBLIC_", "GROUP_"))
    }
    env.update(
        BOT_TOKEN=TOKEN,
        GROUP_ID=str(world.group),
        TELEGRAM_API_URL=world.url,
        DATABASE_URL=world.db_url,
        PORT=port,
        AIRWALLEX_WEBHOOK_SECRET=SECRET,
        LOG_DIR=str(tmp_path / "logs"),
        LOCK_DIR=str(tmp_path),
    )

    async def script(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "scripts/production_tests.py",
            *args,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        return proc.returncode or 0, out.decode()

    report = tmp_path / "report.json"
    code, out = await script("--all", "--report", str(report))
    assert code == 0, out
    assert "OK: 8 passed, 0 failed, 0 skipped" in out and "subbot production tests" in out
    assert TOKEN not in out and TOKEN.split(":")[1] not in report.read_text()
    assert json.loads(report.read_text())["summary"]["passed"] == 8

    env["EXTRA_CHAT_IDS"] = "-100999"
    code, out = await script("--test", "admin", "--report", str(tmp_path / "r.md"))
    assert code == 1 and "FAILED: 0 passed, 1 failed" in out and "chat -100999: cannot check" in out
    assert "| admin | ✗ failed |" in (tmp_path / "r.md").read_text()


# ------------------------------------------------------------------ database connection (runbook scenario 2)
async def test_supabase_client_wraps_the_database(db_url: str) -> None:
    from database.supabase_client import SupabaseClient

    db = create_database(db_url)
    from subbot.store.migrate import upgrade

    await upgrade(db)
    await db.dispose()
    client = SupabaseClient(load_settings(_env_file=None, database_url=db_url))
    with pytest.raises(RuntimeError, match="connect"):
        _ = client.db
    async with client:
        health = await client.health()
    assert health["schema"] == "current" and health["revision"] == health["head"]
    assert health["backend"] in ("sqlite", "postgresql") and health["latency_ms"] >= 0
    assert health["url"] == client.settings.database_url_masked  # never the password
    await client.close()  # idempotent


async def test_supabase_rest_check_sends_the_key_and_reads_the_answer() -> None:
    from subbot.ops.supabase import check_supabase_rest

    seen: list[httpx.Request] = []

    def answer(status: int) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(status, json={})

        return httpx.MockTransport(handler)

    ok = await check_supabase_rest("https://ref.supabase.co/", "svc-key", transport=answer(200))
    assert ok.ok and seen[0].url == "https://ref.supabase.co/rest/v1/"
    assert seen[0].headers["apikey"] == "svc-key" and seen[0].headers["authorization"] == "Bearer svc-key"
    bad = await check_supabase_rest("https://ref.supabase.co", "svc-key", transport=answer(401))
    assert not bad.ok and "rejected (HTTP 401)" in bad.detail and "svc-key" not in bad.detail

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gone = await check_supabase_rest("https://ref.supabase.co", "k", transport=httpx.MockTransport(down))
    assert not gone.ok and "unreachable (ConnectError)" in gone.detail


async def test_connection_script_exit_codes_and_no_secrets(tmp_path: Path) -> None:
    import asyncio

    from subbot.store.migrate import upgrade

    async def script(**env_vars: str) -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SUPABASE_"))}
        env.update(env_vars)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "scripts/test_supabase_connection.py",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode()

    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    code, out = await script(DATABASE_URL=url)
    assert code == 1 and "does not exist" in out
    (tmp_path / "c.db").touch()
    code, out = await script(DATABASE_URL=url)
    assert code == 3 and "✓ connected" in out and "run `subbot migrate`" in out
    db = create_database(url)
    await upgrade(db)
    await db.dispose()
    # The Supabase key check against a closed local port: reported, exit 4, the key never printed.
    code, out = await script(
        DATABASE_URL=url,
        SUPABASE_URL=f"http://127.0.0.1:{free_port()}",
        SUPABASE_SERVICE_KEY="super-secret-service-key",
    )
    assert code == 4 and "✓ schema at revision" in out and "unreachable" in out
    assert "super-secret-service-key" not in out
    code, out = await script(DATABASE_URL="postgresql://u:topsecret@127.0.0.1:1/db")
    assert code == 1 and "cannot connect" in out and "topsecret" not in out and "u:***@" in out
    code, out = await script(DATABASE_URL="mysql://nope")
    assert code == 2 and "DATABASE_URL" in out
