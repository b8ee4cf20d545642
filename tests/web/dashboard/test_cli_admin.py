"""`subbot admin …` through Typer's CliRunner, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from subbot.cli import cli
from subbot.store.db import create_database
from subbot.store.models import AdminUser, AuditEntry

runner = CliRunner()
GOOD = "a long enough passphrase"


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return {"DATABASE_URL": db_url, "LOG_DIR": str(tmp_path / "logs")}


def admins(db_url: str) -> dict[str, tuple[str, bool]]:
    async def read() -> dict[str, tuple[str, bool]]:
        db = create_database(db_url)
        try:
            async with db.sessions() as session:
                rows = (await session.scalars(select(AdminUser))).all()
                return {a.name: (a.password_hash, a.disabled) for a in rows}
        finally:
            await db.dispose()

    return asyncio.run(read())


def audit_actions(db_url: str) -> list[str]:
    async def read() -> list[str]:
        db = create_database(db_url)
        try:
            async with db.sessions() as session:
                return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_accounts_from_the_command_line(env: dict[str, str], db_url: str) -> None:
    refused = runner.invoke(cli, ["admin", "create-user", "alice"], input=f"{GOOD}\n{GOOD}\n", env=env)
    assert refused.exit_code == 2 and "run `subbot migrate` first" in refused.output
    assert runner.invoke(cli, ["migrate"], env=env).exit_code == 0

    made = runner.invoke(cli, ["admin", "create-user", "Alice"], input=f"{GOOD}\n{GOOD}\n", env=env)
    assert made.exit_code == 0, made.output
    assert "dashboard user alice created" in made.output and GOOD not in made.output  # prompts are hidden
    first_hash, disabled = admins(db_url)["alice"]
    assert first_hash.startswith("$argon2id$") and GOOD not in first_hash and not disabled

    again = runner.invoke(cli, ["admin", "create-user", "alice"], input=f"{GOOD}\n{GOOD}\n", env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    differ = runner.invoke(cli, ["admin", "create-user", "bob"], input=f"{GOOD}\nsomething else!!\n", env=env)
    assert differ.exit_code == 1 and "differ" in differ.output
    short = runner.invoke(cli, ["admin", "create-user", "bob"], input="short\nshort\n", env=env)
    assert short.exit_code == 1 and "12 to 1024 characters" in short.output
    named = runner.invoke(cli, ["admin", "create-user", "bob smith"], env=env)
    assert named.exit_code == 1 and "a name is 1-64 characters" in named.output
    piped = runner.invoke(
        cli, ["admin", "create-user", "bob", "--password-stdin"], input=GOOD + "\n", env=env
    )
    assert piped.exit_code == 0, piped.output
    assert set(admins(db_url)) == {"alice", "bob"}

    listed = runner.invoke(cli, ["admin", "list-users"], env=env)
    assert listed.exit_code == 0 and "alice" in listed.output and "bob" in listed.output

    assert runner.invoke(cli, ["admin", "disable-user", "bob"], env=env).exit_code == 0
    assert admins(db_url)["bob"][1] is True
    twice = runner.invoke(cli, ["admin", "disable-user", "bob"], env=env)
    assert twice.exit_code == 1 and "already disabled" in twice.output
    assert runner.invoke(cli, ["admin", "enable-user", "bob"], env=env).exit_code == 0

    new = "another long passphrase"
    reset = runner.invoke(cli, ["admin", "reset-password", "alice"], input=f"{new}\n{new}\n", env=env)
    assert reset.exit_code == 0, reset.output
    assert admins(db_url)["alice"][0] != first_hash
    unknown = runner.invoke(cli, ["admin", "reset-password", "carol"], input=f"{new}\n{new}\n", env=env)
    assert unknown.exit_code == 1 and "no dashboard user 'carol'" in unknown.output

    assert audit_actions(db_url) == [
        "admin_created", "admin_created", "admin_disabled", "admin_enabled", "admin_password_reset",
    ]  # fmt: skip
