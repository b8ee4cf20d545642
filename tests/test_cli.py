"""The `subbot` command as an operator runs it: clear messages, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from subbot import __version__
from subbot.polling_lock import PollingLock

TOKEN = "777002:cli-test-token-not-a-secret-abcdefghij"


def subbot(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_", "PUBLIC_", "GROUP_"))
    }
    clean.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/cli.db",
            "LOCK_DIR": str(tmp),
            "LOG_DIR": str(tmp / "logs"),
        }
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "subbot", *args],
        cwd=tmp,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(tmp_path: Path) -> None:
    result = subbot(tmp_path, "version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_run_without_token_names_the_variable(tmp_path: Path) -> None:
    result = subbot(tmp_path, "run")
    assert result.returncode == 2
    assert "BOT_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = subbot(tmp_path, "run", BOT_TOKEN=TOKEN, PORT="99999")
    assert result.returncode == 2
    assert "PORT" in result.stderr and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_run_refuses_unmigrated_database_then_migrate_fixes_it(tmp_path: Path) -> None:
    refused = subbot(tmp_path, "run", BOT_TOKEN=TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9")
    assert (
        refused.returncode == 1 and "subbot migrate" in refused.stderr and "Traceback" not in refused.stderr
    )
    migrated = subbot(tmp_path, "migrate")
    assert migrated.returncode == 0 and "revision" in migrated.stdout


def test_second_poller_for_the_same_bot_refuses_to_start(tmp_path: Path) -> None:
    assert subbot(tmp_path, "migrate").returncode == 0
    with PollingLock(tmp_path, TOKEN.split(":")[0]):
        result = subbot(tmp_path, "run", BOT_TOKEN=TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9")
    assert result.returncode == 1
    assert "already polling" in result.stderr and "Traceback" not in result.stderr
    assert TOKEN.split(":")[1] not in result.stderr


def test_payments_commands_give_clear_refusals(tmp_path: Path) -> None:
    unmigrated = subbot(tmp_path, "payments", "refund", "nope", BOT_TOKEN=TOKEN)
    assert unmigrated.returncode == 2 and "subbot migrate" in unmigrated.stderr
    assert "Traceback" not in unmigrated.stderr
    assert subbot(tmp_path, "migrate").returncode == 0
    unknown = subbot(tmp_path, "payments", "refund", "nope", BOT_TOKEN=TOKEN)
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
    no_card = subbot(tmp_path, "payments", "reconcile", BOT_TOKEN=TOKEN)
    assert no_card.returncode == 2 and "AIRWALLEX_CLIENT_ID" in no_card.stderr
