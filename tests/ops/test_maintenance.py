"""Maintenance mode (flag, app, admin command, CLI, main.py) and per-user throttling, through the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import subbot.cli_ops as cli_ops
from subbot.app import SubbotApp
from subbot.bot.throttle import SLOW_DOWN, TokenBuckets
from subbot.metrics import THROTTLED
from subbot.ops import maintenance
from subbot.ops.maintenance import FlagState, effective, read_flag, write_flag
from subbot.sandbox.telegram.testing import wait_for
from subbot.store.db import Database, create_database
from subbot.store.migrate import upgrade
from subbot.telegram.limiter import Limits
from tests.e2e.conftest import World, text_has, wait_for_async
from tests.e2e.conftest import world as e2e_world  # noqa: F401 - registers the fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(e2e_world: World) -> World:  # noqa: F811 - tests/e2e's sandbox world, by its usual name
    return e2e_world


DEFAULT = "Bot is under maintenance. Please try again in 30 minutes."
NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the rule
def test_effective_ors_settings_and_flag() -> None:
    assert effective(False, DEFAULT, None) == maintenance.Effective(False, DEFAULT, "off")
    assert effective(True, DEFAULT, None).source == "settings"
    on = FlagState(True, "Back at 5")
    assert effective(False, DEFAULT, on) == maintenance.Effective(True, "Back at 5", "flag")
    assert effective(True, DEFAULT, on).source == "settings+flag"
    # The flag cannot switch off what the process was started with (env or main.py).
    assert effective(True, "from main.py", FlagState(False)).enabled is True
    assert effective(True, "from main.py", FlagState(False)).message == "from main.py"
    assert effective(False, DEFAULT, FlagState(True, None)).message == DEFAULT


def test_main_py_overrides_only_when_true() -> None:
    assert cli_ops.main_overrides(False, "ignored") == {}
    assert cli_ops.main_overrides(True, "Down for 10 min") == {
        "maintenance_mode": True,
        "maintenance_message": "Down for 10 min",
    }


def test_main_py_constants_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing main.py as the runbook says starts the process with the maintenance overrides."""
    import runpy

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli_ops, "_run", lambda overrides, host, port: seen.update(overrides, port=port))
    source = (REPO / "main.py").read_text()
    assert "MAINTENANCE_MODE = False\n" in source and f'MAINTENANCE_MESSAGE = "{DEFAULT}"\n' in source
    module = runpy.run_path(str(REPO / "main.py"), run_name="not_main")
    with pytest.raises(SystemExit) as done:
        module["main"](["--port", "9999"])
    assert done.value.code == 0
    assert seen == {"port": 9999}
    globals_ = module["main"].__globals__
    monkeypatch.setitem(globals_, "MAINTENANCE_MODE", True)
    monkeypatch.setitem(globals_, "MAINTENANCE_MESSAGE", "Short break")
    seen.clear()
    with pytest.raises(SystemExit):
        module["main"]([])
    assert seen == {"maintenance_mode": True, "maintenance_message": "Short break", "port": None}


# ------------------------------------------------------------------ the flag in the database
async def test_flag_round_trip_and_audit(db: Database) -> None:
    from sqlalchemy import select

    from subbot.store.models import AuditEntry

    assert await read_flag(db) is None
    await write_flag(db, enabled=True, message="  Back soon  ", actor="cli", now=NOW)
    flag = await read_flag(db)
    assert flag is not None and flag.enabled and flag.message == "Back soon" and flag.actor == "cli"
    await write_flag(db, enabled=False, message=None, actor="telegram:1", now=NOW)
    flag = await read_flag(db)
    assert flag is not None and not flag.enabled and flag.message is None
    async with db.sessions() as s:
        actions = (await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions == ["maintenance_on", "maintenance_off"]
    with pytest.raises(ValueError, match="limited"):
        await write_flag(db, enabled=True, message="x" * 2000, actor="cli", now=NOW)


# ------------------------------------------------------------------ through Telegram
async def test_admin_switches_maintenance_members_wait_admins_and_payments_go_on(world: World) -> None:
    from tests.e2e.test_stars_journey import buy

    admin = world.user("Ada")
    app = await world.start(admin_ids=[admin])
    alice, bob = world.user("Alice"), world.user("Bob")

    # Bob opened an invoice before maintenance started; he pays during it.
    before = world.seen(bob)
    await world.sandbox.send_text(bob, "/start")
    menu = await world.reply(bob, text_has("Choose a plan"), after=before)
    await world.sandbox.press_button(bob, menu["message_id"], "plan:standard")
    invoice = await world.reply(bob, lambda m: "invoice" in m, after=before)

    seen = world.seen(admin)
    await world.sandbox.send_text(admin, "/maintenance on Back at 18:00 UTC")
    await world.reply(admin, text_has("Maintenance is ON"), after=seen)
    assert app.maintenance and app.maintenance_message == "Back at 18:00 UTC"

    seen = world.seen(alice)
    await world.sandbox.send_text(alice, "/start")
    assert (await world.reply(alice, text_has("Back at"), after=seen))["text"] == "Back at 18:00 UTC"

    seen = world.seen(admin)
    await world.sandbox.send_text(admin, "/admin")
    await world.reply(admin, lambda m: "Back at" not in (m.get("text") or ""), after=seen)

    paid = await world.sandbox.pay_invoice(bob, invoice["message_id"])  # pre_checkout + successful_payment
    assert paid["status"] == "paid"
    await world.reply(bob, text_has("Payment received"))  # sent by the outbox worker

    seen = world.seen(admin)
    await world.sandbox.send_text(admin, "/maintenance off")
    await world.reply(admin, text_has("Maintenance is OFF"), after=seen)
    seen = world.seen(alice)
    await world.sandbox.send_text(alice, "/start")
    await world.reply(alice, text_has("Choose a plan"), after=seen)
    await buy(world, alice)  # and a full purchase works again


async def test_admin_command_usage_and_status(world: World) -> None:
    admin = world.user("Ada")
    await world.start(admin_ids=[admin])
    seen = world.seen(admin)
    await world.sandbox.send_text(admin, "/maintenance sideways")
    await world.reply(admin, text_has("/maintenance on [message]"), after=seen)
    await world.sandbox.send_text(admin, "/maintenance")
    await world.reply(admin, text_has("Maintenance is OFF"), after=seen)
    member = world.user("Mallory")
    seen = world.seen(member)
    await world.sandbox.send_text(member, "/maintenance on")  # not an admin: not a command for them
    await world.sandbox.send_text(member, "/start")
    await world.reply(member, text_has("Choose a plan"), after=seen)
    assert not world.apps[0].maintenance


async def test_running_instance_picks_up_a_flag_written_elsewhere(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "REFRESH_SECONDS", 0.05)
    app = await world.start()
    assert not app.maintenance
    other = create_database(world.db_url)  # another process: `subbot maintenance on`
    try:
        await write_flag(other, enabled=True, message="CLI says wait", actor="cli", now=NOW)
        await wait_for(lambda: app.maintenance and app.maintenance_message == "CLI says wait")
        alice = world.user("Alice")
        await world.sandbox.send_text(alice, "/status")
        await world.reply(alice, text_has("CLI says wait"))
        await write_flag(other, enabled=False, message=None, actor="cli", now=NOW)
        await wait_for(lambda: not app.maintenance)
    finally:
        await other.dispose()


async def test_env_maintenance_wins_over_flag_off(world: World) -> None:
    app = await world.start(maintenance_mode=True, maintenance_message="Env says wait")
    await write_flag(app.db, enabled=False, message=None, actor="cli", now=NOW)
    await app.refresh_maintenance()
    assert app.maintenance and app.maintenance_message == "Env says wait"
    alice = world.user("Alice")
    await world.sandbox.send_text(alice, "/start")
    await world.reply(alice, text_has("Env says wait"))


# ------------------------------------------------------------------ the CLI
def _subbot(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_", "MAINTENANCE_"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/m.db", LOG_DIR=str(tmp / "logs"), LOCK_DIR=str(tmp))
    return subprocess.run(
        [sys.executable, "-m", "subbot", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60
    )


def test_cli_on_status_off(tmp_path: Path) -> None:
    refused = _subbot(tmp_path, "maintenance", "status")
    assert refused.returncode == 2 and "subbot migrate" in refused.stderr
    assert _subbot(tmp_path, "migrate").returncode == 0
    status = _subbot(tmp_path, "maintenance", "status")
    assert status.returncode == 0 and "never set" in status.stdout and "effective:      off" in status.stdout
    on = _subbot(tmp_path, "maintenance", "on", "--message", "Upgrading, back in 10 minutes")
    assert on.returncode == 0, on.stderr
    assert "ON (by cli" in on.stdout and "Upgrading, back in 10 minutes" in on.stdout
    assert "effective:      ON (source: flag)" in on.stdout
    off = _subbot(tmp_path, "maintenance", "off", "--actor", "alice")
    assert off.returncode == 0 and "off (by alice" in off.stdout
    assert "Traceback" not in on.stderr + off.stderr + status.stderr


# ------------------------------------------------------------------ throttling
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_burst_refill_and_one_warning_per_window() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.allow(1) for _ in range(4)] == [True, True, True, False]
    assert buckets.allow(2)  # buckets are per user
    assert buckets.should_warn(1) and not buckets.should_warn(1)
    clock.t += 0.5  # one token back at 2/s
    assert buckets.allow(1) and not buckets.allow(1)
    clock.t += buckets.window  # 1.5 s: full again, and a new warning window
    assert [buckets.allow(1) for _ in range(4)] == [True, True, True, False]
    assert buckets.should_warn(1)
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)


def test_idle_buckets_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    import subbot.bot.throttle as throttle

    monkeypatch.setattr(throttle, "MAX_TRACKED", 10)
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    for user in range(10):
        buckets.allow(user)
    clock.t += 5  # everyone refilled: idle
    buckets.allow(99)
    assert len(buckets) == 1


def _throttled(kind: str) -> float:
    return THROTTLED.labels(kind)._value.get()


async def start_throttled(world: World, **overrides: Any) -> SubbotApp:
    """world.start() with rate limiting on (the e2e world turns it off): throttling, fast outbound pacing."""
    fast = Limits(
        global_per_second=1000,
        global_burst=1000,
        private_per_second=1000,
        private_burst=1000,
        group_per_minute=60000,
        group_burst=1000,
    )
    app = SubbotApp(world.settings(**overrides), clock=world.clock, limits=fast)
    world.apps.append(app)
    await upgrade(app.db)
    await app.prepare()
    await app.start_workers()
    await app.start_bot()
    return app


async def test_throttling_is_off_when_limits_are(world: World) -> None:
    """Tests and benchmarks (Limits(enabled=False)) drive members faster than people can type."""
    await world.start(throttle_rate=0.01, throttle_burst=1)
    user = world.user("Quick")
    for _ in range(4):
        await world.sandbox.send_text(user, "/help")
    await wait_for(lambda: len(world.sandbox.messages_to(user)) == 4)
    assert SLOW_DOWN not in [m.get("text") for m in world.sandbox.messages_to(user)]


async def test_flooding_member_is_dropped_admin_and_payments_are_not(world: World) -> None:
    admin = world.user("Ada")
    # 3 at once, then one per 100 s: nothing refills during the test.
    await start_throttled(world, admin_ids=[admin], throttle_rate=0.01, throttle_burst=3)
    flooder = world.user("Flo")
    dropped_before = _throttled("message")
    for _ in range(10):
        await world.sandbox.send_text(flooder, "/help")
    await wait_for(lambda: _throttled("message") - dropped_before >= 7)
    await wait_for(
        lambda: len([m for m in world.sandbox.messages_to(flooder) if m.get("text") != SLOW_DOWN]) >= 3
    )
    texts = [m.get("text") for m in world.sandbox.messages_to(flooder)]
    assert texts.count(SLOW_DOWN) == 1 and len(texts) == 4

    for _ in range(8):
        await world.sandbox.send_text(admin, "/admin")
    await wait_for(lambda: len(world.sandbox.messages_to(admin)) == 8)
    assert SLOW_DOWN not in [m.get("text") for m in world.sandbox.messages_to(admin)]

    # A member who used up the burst still gets their payment applied.
    payer = world.user("Pat")
    seen = world.seen(payer)
    await world.sandbox.send_text(payer, "/start")
    menu = await world.reply(payer, text_has("Choose a plan"), after=seen)
    await world.sandbox.press_button(payer, menu["message_id"], "plan:standard")
    invoice = await world.reply(payer, lambda m: "invoice" in m, after=seen)
    await world.sandbox.send_text(payer, "/help")  # the third and last token
    await world.sandbox.send_text(payer, "/help")  # dropped
    await wait_for_async(
        _until(lambda: SLOW_DOWN in [m.get("text") for m in world.sandbox.messages_to(payer)])
    )
    assert (await world.sandbox.pay_invoice(payer, invoice["message_id"]))["status"] == "paid"
    await world.reply(payer, text_has("Payment received"))


def _until(predicate: Any) -> Any:
    async def check() -> bool:
        return bool(predicate())

    return check
