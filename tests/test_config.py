"""Settings: defaults, aliases, URL rewriting, _FILE secrets, one-line errors, secrecy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from subbot.config import (
    FILE_FIELDS,
    SECRET_FIELDS,
    ConfigError,
    Settings,
    env_var_names,
    load_settings,
    require,
    secret_values,
)

REPO = Path(__file__).resolve().parent.parent
# Clearly fake, but shaped like a real token so format validation passes.
TOKEN = "1234567:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"
OTHER_TOKEN = "7654321:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJi"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No subbot variable from the outside world, and no repository .env (cwd is an empty dir)."""
    for name in env_var_names():
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(**overrides: Any) -> Settings:
    return load_settings(_env_file=None, **overrides)


def error_of(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**overrides)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- defaults ---------------------------------------------------------------------------------------


def test_defaults_need_no_bot_token() -> None:
    s = settings()
    assert s.bot_token is None
    assert s.database_url == "sqlite+aiosqlite:///data/subbot.db"
    assert s.database_backend == "sqlite"
    assert s.database_pool_size == 5
    assert s.database_statement_cache is True
    assert s.database_uses_pooler is False
    assert (s.host, s.port) == ("0.0.0.0", 8080)
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.public_url is None and s.webhook_mode is False and s.telegram_webhook_url is None
    assert s.maintenance_mode is False
    assert s.maintenance_message == "Bot is under maintenance. Please try again in 30 minutes."
    assert s.airwallex_base_url == "https://api-demo.airwallex.com"
    assert s.airwallex_enabled is False
    assert s.admin_ids == [] and s.extra_chat_ids == []
    assert s.invite_link_ttl_minutes == 30
    assert s.reminder_offsets_days == [3, 1]
    assert s.expiry_grace_hours == 24
    assert s.order_ttl_minutes == 60
    assert (s.outbox_max_attempts, s.outbox_concurrency) == (8, 4)
    assert (s.throttle_rate, s.throttle_burst) == (1.0, 5)
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert (s.log_dir, s.data_dir, s.lock_dir) == (Path("logs"), Path("data"), Path("."))
    assert (s.log_max_bytes, s.log_backup_count) == (10 * 1024 * 1024, 5)
    assert s.environment == "development" and not s.is_production


def test_require_for_run_names_bot_token() -> None:
    s = settings()
    with pytest.raises(ConfigError) as caught:
        s.require_for_run()
    assert str(caught.value) == (
        "BOT_TOKEN: is required (set it in the environment or .env; see .env.example)"
    )
    with pytest.raises(ConfigError, match="BOT_TOKEN: is required"):
        s.require_bot_token()
    settings(bot_token=TOKEN).require_for_run()
    assert settings(bot_token=TOKEN).require_bot_token() == TOKEN


def test_require_lists_every_missing_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        require(settings(), "BOT_TOKEN", "group_id", "PORT")
    assert caught.value.problems == [
        "BOT_TOKEN: is required (set it in the environment or .env; see .env.example)",
        "GROUP_ID: is required (set it in the environment or .env; see .env.example)",
    ]


def test_environment_variables_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text(f"BOT_TOKEN={TOKEN}\nPORT=9000\nLOG_LEVEL=debug\nSOMETHING_ELSE=ignored\n")
    monkeypatch.setenv("PORT", "9100")  # the environment beats .env
    monkeypatch.setenv("MAINTENANCE_MODE", "yes")
    monkeypatch.setenv("GROUP_ID", "")  # empty means unset
    s = load_settings(_env_file=env_file)
    assert s.bot_token is not None and s.bot_token.get_secret_value() == TOKEN
    assert s.port == 9100
    assert s.log_level == "DEBUG"
    assert s.maintenance_mode is True
    assert s.group_id is None


def test_default_env_file_is_dotenv_in_cwd(clean_env: Path) -> None:
    (clean_env / ".env").write_text("PORT=8181\n")
    assert load_settings().port == 8181


def test_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9100")
    assert settings(port=9200).port == 9200


def test_unknown_override_is_refused() -> None:
    assert error_of(prot=1) == "unknown setting(s): prot"


# --- lists and aliases -------------------------------------------------------------------------------


def test_admin_ids_accept_commas_and_spaces_and_merge_legacy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "11, 22 33;22")
    monkeypatch.setenv("ADMIN_USER_ID", "44")
    assert settings().admin_ids == [11, 22, 33, 44]


def test_legacy_admin_user_id_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USER_ID", "44")
    assert settings().admin_ids == [44]
    assert settings(admin_ids=[44], admin_user_id=44).admin_ids == [44]


def test_lists_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRA_CHAT_IDS", "-1001, -1002")
    monkeypatch.setenv("REMINDER_OFFSETS_DAYS", "1,7,3")
    s = settings()
    assert s.extra_chat_ids == [-1001, -1002]
    assert s.reminder_offsets_days == [7, 3, 1]
    monkeypatch.setenv("REMINDER_OFFSETS_DAYS", "none")
    assert settings().reminder_offsets_days == []


def test_webhook_base_url_is_a_legacy_alias_of_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_BASE_URL", "https://bot.example.org/")
    s = settings()
    assert s.public_url == "https://bot.example.org"
    assert s.webhook_mode is True
    assert s.telegram_webhook_url == "https://bot.example.org/webhook/telegram"
    monkeypatch.setenv("PUBLIC_URL", "https://new.example.org")
    assert settings().public_url == "https://new.example.org"  # the current name wins
    assert settings(public_url="https://kw.example.org/").public_url == "https://kw.example.org"


def test_public_url_must_be_https_except_localhost() -> None:
    assert error_of(public_url="http://bot.example.org") == (
        "PUBLIC_URL: must start with https:// (http:// is accepted only for localhost), "
        "got 'http://bot.example.org'"
    )
    assert settings(public_url="http://127.0.0.1:8080").public_url == "http://127.0.0.1:8080"
    assert error_of(webhook_base_url="ftp://x").startswith("WEBHOOK_BASE_URL: must be an http(s) URL")


# --- database URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example.org:5432/app", "postgresql+asyncpg://u:p@db.example.org:5432/app"),
        ("postgresql://u:p@db.example.org/app", "postgresql+asyncpg://u:p@db.example.org/app"),
        ("postgresql+asyncpg://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://u:p@h:5432/app?sslmode=require", "postgresql+asyncpg://u:p@h:5432/app?ssl=require"),
    ],
)
def test_database_url_rewriting(given: str, expected: str) -> None:
    assert settings(database_url=given).database_url == expected


def test_unsupported_database_url() -> None:
    message = error_of(database_url="mysql://root:hunter2pass@db/app")
    assert message.startswith("DATABASE_URL: must use sqlite://")
    assert "hunter2pass" not in message


def test_supabase_transaction_pooler_disables_statement_cache() -> None:
    pooled = settings(database_url="postgresql://postgres.ref:pw@aws-0-eu.pooler.supabase.com:6543/postgres")
    assert pooled.database_uses_pooler is True
    assert pooled.database_statement_cache is False
    assert pooled.database_statement_cache_enabled is False
    session = settings(database_url="postgresql://postgres.ref:pw@aws-0-eu.pooler.supabase.com:5432/postgres")
    assert session.database_uses_pooler is False
    assert session.database_statement_cache is True
    forced = settings(database_url="postgresql://u:pw@h:6543/postgres", database_statement_cache="true")
    assert forced.database_uses_pooler is True and forced.database_statement_cache is True


def test_database_password_is_masked_and_redacted() -> None:
    s = settings(database_url="postgres://app:s3cr%40tpw@db.example.org:5432/app")
    assert s.database_url_masked == "postgresql+asyncpg://app:***@db.example.org:5432/app"
    assert "s3cr" not in repr(s) and "s3cr" not in str(s)
    assert "s3cr@tpw" in secret_values(s) and "s3cr%40tpw" in secret_values(s)


# --- secrets -----------------------------------------------------------------------------------------


def test_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "bot_token"
    secret_file.write_text(f"  {TOKEN}\n")
    monkeypatch.setenv("BOT_TOKEN_FILE", str(secret_file))
    db_file = tmp_path / "db_url"
    db_file.write_text("postgres://u:pw@db.example.org/app\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(db_file))
    s = settings()
    assert s.bot_token is not None and s.bot_token.get_secret_value() == TOKEN
    assert s.bot_token_id == "1234567"
    assert s.database_url == "postgresql+asyncpg://u:pw@db.example.org/app"


def test_secret_file_named_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 40)
    env_file = tmp_path / "x.env"
    env_file.write_text(f"SESSION_KEY_FILE={tmp_path / 'key'}\n")
    s = load_settings(_env_file=env_file)
    assert s.session_key is not None and s.session_key.get_secret_value() == "k" * 40


def test_secret_file_in_environment_beats_value_in_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "tok").write_text(TOKEN)
    env_file = tmp_path / "x.env"
    env_file.write_text(f"BOT_TOKEN={OTHER_TOKEN}\n")
    monkeypatch.setenv("BOT_TOKEN_FILE", str(tmp_path / "tok"))
    s = load_settings(_env_file=env_file)
    assert s.bot_token is not None and s.bot_token.get_secret_value() == TOKEN


def test_secret_file_problems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOT_TOKEN_FILE", str(tmp_path / "missing"))
    assert error_of().startswith(f"BOT_TOKEN_FILE: cannot read '{tmp_path / 'missing'}'")
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("BOT_TOKEN_FILE", str(tmp_path / "empty"))
    assert error_of() == f"BOT_TOKEN_FILE: '{tmp_path / 'empty'}' is empty"
    (tmp_path / "tok").write_text(TOKEN)
    monkeypatch.setenv("BOT_TOKEN_FILE", str(tmp_path / "tok"))
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    assert error_of() == "BOT_TOKEN: set either BOT_TOKEN or BOT_TOKEN_FILE, not both"


def test_every_secret_is_a_secretstr_and_has_a_file_variant() -> None:
    secret_fields = {
        name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
    }
    assert secret_fields == set(SECRET_FIELDS)
    assert set(SECRET_FIELDS) <= set(FILE_FIELDS)


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGEME",
        "your-token-here",
        "xxx",
        "YOUR_SUPABASE_SERVICE_KEY",
        "<service-key>",
        "${SUPABASE_SERVICE_KEY}",
        "   ",
        "",
        "replace-me-with-the-real-key",
    ],
)
def test_placeholder_secrets_are_refused(value: str) -> None:
    message = error_of(supabase_service_key=value)
    assert message.startswith("SUPABASE_SERVICE_KEY: looks like a placeholder")
    if value.strip():
        assert value not in message


@pytest.mark.parametrize(
    "token", ["123456:changeme-changeme-changeme-changeme", "123456:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]
)
def test_placeholder_bot_token_is_refused(token: str) -> None:
    assert error_of(bot_token=token).startswith("BOT_TOKEN: looks like a placeholder")


def test_malformed_bot_token_is_refused_without_echoing_it() -> None:
    message = error_of(bot_token="12345:tooshortbutsecret")
    assert message.startswith("BOT_TOKEN: does not look like a Telegram bot token")
    assert "tooshortbutsecret" not in message


def test_admin_password_is_not_supported() -> None:
    message = error_of(admin_password="hunter2-but-longer")
    assert message.startswith("ADMIN_PASSWORD: is not supported")
    assert "subbot admin create-user" in message
    assert "hunter2" not in message


def test_repr_and_str_hide_every_secret() -> None:
    values = {
        "bot_token": TOKEN,
        "webhook_secret": "whsec_abcdefghijklmnop1234",
        "supabase_service_key": "sb-service-key-0123456789abcdef",
        "alert_webhook_url": "https://hooks.slack.com/services/T01/B02/abcdefghijklmnop",
        "airwallex_client_id": "awx-client",
        "airwallex_api_key": "awx-api-key-0123456789abcdef",
        "airwallex_webhook_secret": "awx-webhook-0123456789abcdef",
        "session_key": "s" * 40,
        "database_url": "postgres://u:db-pass-0123456789@h:5432/app",
    }
    s = settings(**values)
    shown = repr(s) + str(s)
    secrets = secret_values(s)
    for name, value in values.items():
        if name not in ("airwallex_client_id", "database_url"):
            assert value in secrets
            assert value not in shown
            assert value not in repr(s.model_dump())  # SecretStr stays masked in dumps too
    assert "db-pass-0123456789" in secrets and "db-pass-0123456789" not in shown
    assert s.telegram_webhook_secret == "whsec_abcdefghijklmnop1234"
    assert secrets == sorted(secrets, key=len, reverse=True)


def test_secret_values_empty_without_secrets() -> None:
    assert secret_values(settings()) == []


def test_derived_webhook_secret() -> None:
    s = settings(bot_token=TOKEN)
    derived = s.telegram_webhook_secret
    assert re.fullmatch(r"[0-9a-f]{64}", derived)
    assert derived == settings(bot_token=TOKEN).telegram_webhook_secret  # stable across restarts
    assert derived != settings(bot_token=OTHER_TOKEN).telegram_webhook_secret
    assert TOKEN.split(":")[1] not in derived
    assert derived in secret_values(s)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        _ = settings().telegram_webhook_secret


def test_webhook_secret_charset() -> None:
    assert error_of(webhook_secret="has spaces!").startswith("WEBHOOK_SECRET: must be 1-256 characters")


def test_session_key_length() -> None:
    assert error_of(session_key="short-key").startswith("SESSION_KEY: must be at least 32 characters")


def test_airwallex_credentials_come_in_pairs() -> None:
    assert error_of(airwallex_client_id="client") == (
        "AIRWALLEX_CLIENT_ID and AIRWALLEX_API_KEY must be set together (AIRWALLEX_API_KEY is missing)"
    )
    s = settings(airwallex_client_id="client", airwallex_api_key=SecretStr("awx-api-key-0123456789"))
    assert s.airwallex_enabled


# --- one-line errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("PORT", "99999", "PORT: must be between 1 and 65535, got '99999'"),
        ("PORT", "eighty", "PORT: must be a whole number, got 'eighty'"),
        ("GROUP_ID", "12345", "GROUP_ID: must be a negative chat id"),
        ("GROUP_ID", "0", "GROUP_ID: must be a negative chat id"),
        ("EXTRA_CHAT_IDS", "-1, 2", "EXTRA_CHAT_IDS: must contain negative chat ids"),
        ("ADMIN_IDS", "1, two", "ADMIN_IDS: must be a comma-separated list of whole numbers, got '1, two'"),
        ("ADMIN_USER_ID", "-5", "ADMIN_USER_ID: must be a positive Telegram user id"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: must be one of 'text' or 'json', got 'xml'"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT: must be one of 'development', 'production' or 'test'"),
        ("MAINTENANCE_MODE", "maybe", "MAINTENANCE_MODE: must be true or false, got 'maybe'"),
        ("INVITE_LINK_TTL_MINUTES", "0", "INVITE_LINK_TTL_MINUTES: must be between 1 and 1440, got '0'"),
        ("THROTTLE_RATE", "0", "THROTTLE_RATE: must be greater than 0"),
        ("THROTTLE_RATE", "fast", "THROTTLE_RATE: must be a number, got 'fast'"),
        ("SUPABASE_URL", "db.supabase.co", "SUPABASE_URL: must be an http(s) URL"),
        ("PLANS_FILE", "plans.yaml", "PLANS_FILE: must be a .toml or .json file"),
        ("PLANS_FILE", "missing.toml", "PLANS_FILE: file not found"),
        ("DATABASE_STATEMENT_CACHE", "sometimes", "DATABASE_STATEMENT_CACHE: must be true or false"),
    ],
)
def test_bad_values_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    assert error_of().startswith(expected)


def test_several_problems_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as caught:
        settings()
    assert len(caught.value.problems) == 2
    assert str(caught.value) == "; ".join(caught.value.problems)
    assert "PORT:" in str(caught.value) and "LOG_FORMAT:" in str(caught.value)


def test_alert_webhook_url_is_secret_and_validated() -> None:
    assert (
        error_of(alert_webhook_url="not a url")
        == "ALERT_WEBHOOK_URL: must be an http(s) URL such as https://example.org"
    )
    url = "https://hooks.slack.com/services/T01/B02/abcdefghijklmnop"
    s = settings(alert_webhook_url=url)
    assert s.alert_webhook_url is not None and s.alert_webhook_url.get_secret_value() == url
    assert url not in repr(s)


def test_plans_file_that_exists(tmp_path: Path) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text("")
    assert settings(plans_file=str(plans)).plans_file == plans


# --- documentation stays complete --------------------------------------------------------------------


def test_every_variable_is_documented() -> None:
    example = (REPO / ".env.example").read_text()
    docs = (REPO / "docs" / "configuration.md").read_text()
    for name in env_var_names():
        assert re.search(rf"^#?\s*{name}=", example, re.MULTILINE), f"{name} missing from .env.example"
        assert f"`{name}`" in docs, f"{name} missing from docs/configuration.md"


def test_env_example_contains_no_real_looking_token() -> None:
    example = (REPO / ".env.example").read_text()
    assert not re.search(r"\d{6,12}:[A-Za-z0-9_-]{30,}", example)
