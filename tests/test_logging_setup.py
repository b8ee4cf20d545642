"""Logging: files, routing, JSON format, and that no secret ever reaches a handler's output."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from subbot.config import Settings, env_var_names, load_settings
from subbot.logging_setup import (
    LOG_FILES,
    REDACTED,
    RedactingFilter,
    configure_logging,
    redact,
    reset_logging,
)

TOKEN = "1234567:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"
# A token of another bot: not configured anywhere, caught by the pattern alone.
STRAY_TOKEN = "5550012:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJi"
SUPABASE_KEY = "sb-service-key-9f8e7d6c5b4a"
DB_PASSWORD = "db-pass-0123456789"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in env_var_names():
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    saved_level = root.level
    yield
    reset_logging()
    root.setLevel(saved_level)
    for name in ("subbot.payments", "subbot.audit"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "supabase_service_key": SUPABASE_KEY,
        "database_url": f"postgres://app:{DB_PASSWORD}@db.example.org:5432/app",
        "log_dir": tmp_path / "logs",
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


def read_logs(settings: Settings) -> dict[str, str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return {key: (Path(settings.log_dir) / name).read_text() for key, name in LOG_FILES.items()}


def test_files_are_created_in_a_new_directory(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, log_dir=tmp_path / "deep" / "logs")
    configure_logging(settings)
    for name in LOG_FILES.values():
        assert (tmp_path / "deep" / "logs" / name).is_file()


def test_routing_by_level_and_logger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path)
    configure_logging(settings)
    logging.getLogger("subbot.bot").info("plain info")
    logging.getLogger("subbot.bot").error("plain error")
    logging.getLogger("subbot.payments").info("payment captured")
    logging.getLogger("subbot.payments.stars").info("stars refund")
    logging.getLogger("subbot.paymentsx").info("not a payments child")
    logging.getLogger("subbot.audit.admin").info("admin granted access")
    logs = read_logs(settings)

    assert "plain info" in logs["main"] and "payment captured" in logs["main"]
    assert "plain error" in logs["errors"] and "plain info" not in logs["errors"]
    assert "payment captured" in logs["payments"] and "stars refund" in logs["payments"]
    for other in ("plain info", "plain error", "not a payments child", "admin granted access"):
        assert other not in logs["payments"]
    assert logs["audit"].strip().endswith("admin granted access")
    assert logs["audit"].count("\n") == 1
    out = capsys.readouterr().out
    assert "plain info" in out and "payment captured" in out


def test_payments_and_audit_keep_info_when_log_level_is_higher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, log_level="WARNING")
    configure_logging(settings)
    logging.getLogger("subbot.bot").info("chatty")
    logging.getLogger("subbot.payments").info("order paid")
    logging.getLogger("subbot.audit").info("user banned")
    logs = read_logs(settings)
    assert "order paid" in logs["payments"] and "user banned" in logs["audit"]
    assert "chatty" not in logs["main"] and "order paid" not in logs["main"]
    out = capsys.readouterr().out
    assert "chatty" not in out and "order paid" not in out


def test_configuring_twice_does_not_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path)
    configure_logging(settings)
    configure_logging(settings)
    logging.getLogger("subbot.payments").warning("only once")
    logs = read_logs(settings)
    assert logs["main"].count("only once") == 1
    assert logs["payments"].count("only once") == 1
    assert capsys.readouterr().out.count("only once") == 1


def test_foreign_handlers_are_left_alone(tmp_path: Path) -> None:
    foreign = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(foreign)
    try:
        configure_logging(make_settings(tmp_path))
        configure_logging(make_settings(tmp_path))
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)


def _log_secrets_every_way() -> None:
    log = logging.getLogger("subbot.payments.telegram")
    log.warning("token in message %s", "x")
    log.warning(f"direct {TOKEN} and {SUPABASE_KEY}")
    log.warning("args %s / %r / %s", TOKEN, SUPABASE_KEY, f"postgres://app:{DB_PASSWORD}@db")
    log.warning("url https://api.telegram.org/bot%s/sendMessage", STRAY_TOKEN)
    log.info("extra", extra={"request_url": f"https://api.telegram.org/bot{TOKEN}/getMe"})
    try:
        raise RuntimeError(f"call to /bot{TOKEN}/getUpdates failed, key={SUPABASE_KEY} pw={DB_PASSWORD}")
    except RuntimeError:
        log.exception("request failed")
    try:
        raise ValueError(f"stray {STRAY_TOKEN}")
    except ValueError as exc:
        logging.getLogger("subbot.bot").error("boom: %s", exc, exc_info=True)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_never_reach_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    settings = make_settings(tmp_path, log_format=log_format)
    configure_logging(settings)
    _log_secrets_every_way()
    logs = read_logs(settings)
    captured = capsys.readouterr()
    outputs = {**logs, "stdout": captured.out, "stderr": captured.err}
    secret_part = TOKEN.split(":")[1]
    for where, text in outputs.items():
        for secret in (TOKEN, secret_part, STRAY_TOKEN, STRAY_TOKEN.split(":")[1], SUPABASE_KEY, DB_PASSWORD):
            assert secret not in text, f"{secret[:6]}... leaked to {where}"
    assert "Traceback" in logs["errors"] and "RuntimeError" in logs["errors"]
    assert REDACTED in logs["errors"] and REDACTED in captured.out
    assert "request failed" in logs["payments"]


def test_json_lines_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, log_format="json")
    configure_logging(settings)
    log = logging.getLogger("subbot.payments")
    log.info("order %s paid", 42, extra={"order_id": 42, "user": "alice"})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.error("failed", exc_info=True)
    stdout_lines = capsys.readouterr().out.strip().splitlines()
    file_lines = read_logs(settings)["payments"].strip().splitlines()
    assert len(stdout_lines) == 2 and len(file_lines) == 2
    first = json.loads(file_lines[0])
    assert first["message"] == "order 42 paid"
    assert first["level"] == "INFO"
    assert first["logger"] == "subbot.payments"
    assert first["order_id"] == 42 and first["user"] == "alice"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "exc_info" not in first
    second = json.loads(stdout_lines[1])
    assert "ZeroDivisionError" in second["exc_info"]


def test_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(tmp_path))
    logging.getLogger("subbot.x").warning("hello %s", "world")
    line = capsys.readouterr().out.strip()
    assert line.endswith("WARNING  subbot.x: hello world")
    assert line[:4].isdigit() and "Z " in line


def test_noisy_loggers_are_quieted(tmp_path: Path) -> None:
    configure_logging(make_settings(tmp_path, log_level="DEBUG"))
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("aiohttp.access").level == logging.WARNING
    assert logging.getLogger("aiogram.event").level == logging.WARNING


def test_redact_helper() -> None:
    assert redact(f"GET /bot{STRAY_TOKEN}/getMe") == f"GET /bot{REDACTED}/getMe"
    assert redact("pw=hunter2-long", ["hunter2-long"]) == f"pw={REDACTED}"
    assert redact("short 12345:abc stays") == "short 12345:abc stays"


def test_filter_survives_bad_format_strings() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items %s", (TOKEN,), None)
    assert RedactingFilter([TOKEN]).filter(record)
    assert TOKEN not in record.getMessage()
