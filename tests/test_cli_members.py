"""`subbot members …`: the operator's view and actions on one SQLite file.

Most commands run in-process through the real Typer app (aiogram's import costs several seconds per
subprocess); the real `python -m subbot` entry point is exercised by one subprocess at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from subbot.app import SubbotApp
from subbot.cli import cli
from subbot.config import load_settings
from subbot.services import checkout, payments
from subbot.store import users
from subbot.store.migrate import upgrade
from subbot.store.models import AuditEntry, OutboxJob, Subscription, User

TOKEN = "777003:cli-members-token-not-a-secret-abcdefgh"
GROUP = -1001234567890


def env_for(tmp: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/members.db",
        "BOT_TOKEN": TOKEN,
        "GROUP_ID": str(GROUP),
        "TELEGRAM_API_URL": "http://127.0.0.1:9",  # never called: the CLI only queues work
        "LOCK_DIR": str(tmp),
        "LOG_DIR": str(tmp / "logs"),
    }


def app_for(tmp: Path) -> SubbotApp:
    settings = load_settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp}/members.db",
        bot_token=TOKEN,
        group_id=GROUP,
        telegram_api_url="http://127.0.0.1:9",
        lock_dir=tmp,
        log_dir=tmp / "logs",
    )
    return SubbotApp(settings)


async def seed(tmp: Path) -> tuple[int, int]:
    """Alice paid for Standard with Stars; Bob only wrote to the bot."""
    app = app_for(tmp)
    try:
        await upgrade(app.db)
        await app.prepare()
        now = app.clock.now()
        async with app.ctx.transaction() as session:
            await users.upsert(session, 1001, now, first_name="Alice", username="alice")
            await users.upsert(session, 1002, now, first_name="Bob [red]x[/]", username="bob")
        invoice = await checkout.create_stars_order(app.ctx, 1001, "standard")
        await payments.apply_stars_payment(
            app.ctx, user_id=1001, payload=invoice.order_id, charge_id="charge-1",
            total_amount=100, currency="XTR", raw={},
        )  # fmt: skip
    finally:
        await app.stop()
    return 1001, 1002


async def snapshot(tmp: Path) -> tuple[list[Subscription], list[AuditEntry], list[OutboxJob], list[User]]:
    app = app_for(tmp)
    try:
        async with app.db.sessions() as s:
            subs = list((await s.scalars(select(Subscription).order_by(Subscription.id))).all())
            audit = list((await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())
            jobs = list((await s.scalars(select(OutboxJob).order_by(OutboxJob.id))).all())
            people = list((await s.scalars(select(User).order_by(User.id))).all())
    finally:
        await app.stop()
    return subs, audit, jobs, people


def spawn(tmp: Path, *args: str) -> subprocess.Popen[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "DATABASE_", "PUBLIC_", "GROUP_", "ADMIN_", "TELEGRAM_", "AIRWALLEX_"))
    }
    clean.update(env_for(tmp), COLUMNS="200")
    return subprocess.Popen(
        [sys.executable, "-m", "subbot", *args],
        cwd=tmp,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_members_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    alice, bob = asyncio.run(seed(tmp_path))
    runner = CliRunner(env={**env_for(tmp_path), "COLUMNS": "200"})

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["members", *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.stdout if code == 0 else result.stderr

    out = run("grant", "@bob", "10", "--plan", "basic")
    assert out.startswith("granted 10 days of basic to Bob [red]x[/] (@bob, 1002): until ")
    assert "extended standard of Alice (@alice, 1001) by 5 days" in run("extend", str(alice), "5")
    assert "whitelisted Alice" in run("whitelist", "@ALICE")
    assert "no longer whitelisted" in run("unwhitelist", "@alice")
    assert "invite for Alice (@alice, 1001) queued" in run("resend", "@alice")
    assert f"from 1 chat(s) queued: {GROUP}" in run("remove", "@alice", "--chat", str(GROUP))
    assert "revoked Bob [red]x[/] (@bob, 1002): 1 subscription(s) ended" in run(
        "revoke", "@bob", "--reason", "chargeback"
    )

    # Refusals: one red line, exit 1, no traceback.
    assert run("revoke", "@nobody", code=1) == (
        "error: No member @nobody. They must have written to the bot (or been imported).\n"
    )
    for args, words in (
        (("show", "@nobody"), "No member @nobody"),
        (("grant", "@alice", "5", "--plan", "gold"), "unknown plan 'gold'"),
        (("grant", "@alice", "0"), "Days must be a whole number from 1 to 3650"),
        (("extend", "@alice", "ten"), "Days must be a whole number from 1 to 3650"),
        (("grant", "@alice", "99999999999999999999"), "Days must be a whole number from 1 to 3650"),
        (("extend", "@bob", "3"), "has no active subscription to extend"),
        (("revoke", "@bob"), "has no active access"),
        (("unwhitelist", "@bob"), "is not whitelisted"),
        (("remove", "@bob", "--chat", "-5"), "chat -5 is not configured"),
        (("show", "@аlice"), "Give a numeric user id or an @username"),
        (("show", "99999999999999999999999"), "A user id is a positive number"),
    ):
        line = run(*args, code=1)
        assert line.startswith("error: ") and words in line and line.count("\n") <= 2, line
        assert "Traceback" not in line

    subs, audit, jobs, people = asyncio.run(snapshot(tmp_path))
    standard, basic = subs
    assert (standard.user_id, standard.plan_code, standard.status) == (alice, "standard", "active")
    assert standard.ends_at is not None and (standard.ends_at - standard.starts_at).days == 35
    assert (basic.user_id, basic.plan_code, basic.status) == (bob, "basic", "revoked")
    assert [(a.actor, a.action, a.target_user_id) for a in audit] == [
        ("cli", "grant_days", bob),
        ("cli", "grant_days", alice),
        ("cli", "whitelist_on", alice),
        ("cli", "whitelist_off", alice),
        ("cli", "resend_invite", alice),
        ("cli", "remove_from_group", alice),
        ("cli", "revoke", bob),
    ]
    assert audit[-1].details["reason"] == "chargeback"
    assert {j.kind for j in jobs} == {"grant_access", "kick", "send_message"}
    assert not any(p.is_whitelisted for p in people)

    # The real entry point (one subprocess: importing aiogram costs seconds): a member's page.
    show = spawn(tmp_path, "members", "show", "@alice")
    show_out, show_err = show.communicate(timeout=90)
    assert show.returncode == 0 and "Traceback" not in show_err, show_err
    expected = ["Alice", "@alice", "id 1001", "Subscriptions", "standard", "active", "Payments", "100 ⭐"]
    expected += ["stars", "Groups", str(GROUP), "removed", "Audit", "remove_from_group"]
    for fragment in expected:
        assert fragment in show_out, (fragment, show_out)
