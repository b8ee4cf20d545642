"""Configuration: every environment variable subbot reads is declared here.

Values come from (highest priority first): keyword overrides passed to :func:`load_settings`,
``NAME_FILE`` secret files named in the environment, the environment, ``NAME_FILE`` secret files named
in ``.env``, the ``.env`` file, and finally the defaults below.  Empty variables count as unset.

Use :func:`load_settings` (not ``Settings()``) in entry points: it turns pydantic's ``ValidationError``
into a :class:`ConfigError` carrying one human-readable line per problem, never a traceback.

See ``docs/configuration.md`` and ``.env.example`` for the full list of variables.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "FILE_FIELDS",
    "SECRET_FIELDS",
    "TELEGRAM_WEBHOOK_PATH",
    "ConfigError",
    "Settings",
    "env_var_names",
    "load_settings",
    "normalize_database_url",
    "require",
    "secret_values",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/subbot.db"
SUPABASE_TRANSACTION_POOLER_PORT = 6543
#: Path of the Telegram webhook endpoint served by subbot.web (appended to PUBLIC_URL).
TELEGRAM_WEBHOOK_PATH = "/webhook/telegram"

#: Fields holding secrets: ``SecretStr`` values, never shown in ``repr``, redacted from logs, and
#: loadable from a file with the ``NAME_FILE`` variant.
SECRET_FIELDS: tuple[str, ...] = (
    "bot_token",
    "webhook_secret",
    "supabase_service_key",
    "alert_webhook_url",
    "incident_slack_webhook_url",
    "airwallex_api_key",
    "airwallex_webhook_secret",
    "session_key",
    "admin_password",
)
#: Fields that accept a ``NAME_FILE`` variant (the secrets plus DATABASE_URL, which embeds a password).
FILE_FIELDS: tuple[str, ...] = (*SECRET_FIELDS, "database_url")

_REQUIRED_HINT = "is required (set it in the environment or .env; see .env.example)"
_BOT_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LIST_SPLIT_RE = re.compile(r"[\s,;]+")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_WEBHOOK_SECRET_DERIVATION_LABEL = b"subbot/telegram-webhook-secret/v1"

_PLACEHOLDER_EXACT = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "your-token-here",
        "your_token_here",
        "replaceme",
        "replace-me",
        "replace_me",
        "placeholder",
        "todo",
        "tbd",
        "none",
        "null",
    }
)
_PLACEHOLDER_MARKERS = (
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "replace_me",
    "your-token",
    "your_token",
    "placeholder",
    "example",
    "xxxxxxxx",
    "${",
)
_PLACEHOLDER_ONLY_CHARS_RE = re.compile(r"^[xX*._\-]*$")


class ConfigError(Exception):
    """Invalid or missing configuration.

    ``str(error)`` is one human-readable line naming the variable(s) and what is wrong; ``problems``
    holds the individual ``"NAME: what is wrong"`` messages.  Never contains secret values.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems if problems is not None else [message]

    def __str__(self) -> str:
        return self.message


def _looks_like_placeholder(value: str) -> bool:
    """True for values copied from an example instead of a real secret."""
    stripped = value.strip()
    lowered = stripped.lower()
    if lowered in _PLACEHOLDER_EXACT or _PLACEHOLDER_ONLY_CHARS_RE.match(stripped):
        return True
    if lowered.startswith(("your_", "your-", "your ")):
        return True
    if stripped.startswith("<") and stripped.endswith(">"):
        return True
    return any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


def _custom(kind: str, message: str) -> PydanticCustomError:
    # No context dict: pydantic then uses ``message`` verbatim (no brace formatting).
    return PydanticCustomError(kind, message)


def _split_list(value: Any) -> Any:
    """Accept ``"1, 2 3;4"``, ``"[1,2]"``, a single int or a list; leave anything else to pydantic."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        text = value.strip().strip("[]").strip()
        if text.lower() in ("none", "off", "-"):
            return []
        items = [item for item in _LIST_SPLIT_RE.split(text) if item]
        for item in items:
            if not re.fullmatch(r"[+-]?\d+", item):
                raise _custom("int_list", "must be a comma-separated list of whole numbers")
        return [int(item) for item in items]
    return value


def _dedupe(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


SEVERITIES = ("SEV-1", "SEV-2", "SEV-3")


@dataclass(frozen=True)
class EscalationLevel:
    """One level of the runbook's contact escalation matrix (INCIDENT_ESCALATION)."""

    name: str
    after: int  # minutes since detection; level 1 is paged at once and must acknowledge within this
    telegram: tuple[int, ...] = ()  # Telegram user/chat ids messaged directly (users must have /start-ed)
    slack: tuple[str, ...] = ()  # mentions added to the Slack status post, e.g. "<@U024BE7LH>"
    severities: tuple[str, ...] = SEVERITIES  # the severities this level is paged for


DEFAULT_ESCALATION = (  # the runbook's matrix; contacts are the operator's to fill in
    EscalationLevel("On-call engineer", 15),
    EscalationLevel("Technical lead", 30, severities=("SEV-1", "SEV-2")),
    EscalationLevel("Product owner", 60, severities=("SEV-1", "SEV-2")),
    EscalationLevel("Executive team", 120, severities=("SEV-1",)),
)
DEFAULT_UPDATE_MINUTES = {"SEV-1": 15, "SEV-2": 30, "SEV-3": 120}  # the runbook's response times


def _parse_escalation(value: Any) -> Any:
    """INCIDENT_ESCALATION: a JSON list of {"name", "after", "telegram", "slack", "severities"}."""
    if not isinstance(value, str):
        return value
    try:
        items = json.loads(value)
    except ValueError:
        raise _custom(
            "escalation", 'must be a JSON list such as [{"name": "On-call", "after": 15}]'
        ) from None
    if not isinstance(items, list) or not items:
        raise _custom("escalation", "must be a non-empty JSON list of levels")
    levels: list[EscalationLevel] = []
    for n, item in enumerate(items, 1):
        levels.append(_escalation_level(n, item, levels[-1].after if levels else 0))
    if len({lv.name.lower() for lv in levels}) != len(levels):
        raise _custom("escalation", "level names must be different")
    return tuple(levels)


def _escalation_level(n: int, item: Any, previous_after: int) -> EscalationLevel:
    def bad(what: str) -> PydanticCustomError:
        return _custom("escalation", f"level {n}: {what}")

    if not isinstance(item, dict):
        raise bad('must be an object such as {"name": "Technical lead", "after": 30}')
    unknown = sorted(set(item) - {"name", "after", "telegram", "slack", "severities"})
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)} (name, after, telegram, slack, severities)")
    name, after = item.get("name"), item.get("after")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
        raise bad("'name' must be a text of 1-64 characters")
    if type(after) is not int or not 0 <= after <= 10080 or after < previous_after:
        raise bad("'after' must be whole minutes (0-10080), not less than the level before")
    telegram, slack = item.get("telegram", []), item.get("slack", [])
    if not isinstance(telegram, list) or any(type(t) is not int or t == 0 for t in telegram):
        raise bad("'telegram' must be a list of numeric Telegram user or chat ids")
    if not isinstance(slack, list) or any(not isinstance(m, str) or not 0 < len(m) <= 64 for m in slack):
        raise bad("'slack' must be a list of mentions such as \"<@U024BE7LH>\"")
    severities = item.get("severities", list(SEVERITIES))
    if not isinstance(severities, list) or not severities or any(s not in SEVERITIES for s in severities):
        raise bad("'severities' must be a non-empty list of SEV-1, SEV-2, SEV-3")
    return EscalationLevel(
        name.strip(), after, tuple(telegram), tuple(m.strip() for m in slack), tuple(sorted(set(severities)))
    )


def _parse_update_minutes(value: Any) -> Any:
    """INCIDENT_UPDATE_MINUTES: ``SEV-1=15,SEV-2=30,SEV-3=120`` (or JSON); missing levels keep the default."""
    if isinstance(value, str):
        text = value.strip()
        try:
            pairs = (
                json.loads(text)
                if text.startswith("{")
                else dict(part.split("=", 1) for part in _LIST_SPLIT_RE.split(text) if part)
            )
        except ValueError:
            raise _custom("update_minutes", "must look like SEV-1=15,SEV-2=30,SEV-3=120") from None
        value = pairs
    if not isinstance(value, dict):
        return value
    merged = dict(DEFAULT_UPDATE_MINUTES)
    for key, minutes in value.items():
        sev = str(key).strip().upper()
        if sev not in SEVERITIES or not re.fullmatch(r"[0-9]{1,5}", str(minutes).strip()):
            raise _custom("update_minutes", "must look like SEV-1=15,SEV-2=30,SEV-3=120 (whole minutes)")
        if not 1 <= int(str(minutes).strip()) <= 10080:
            raise _custom("update_minutes", "minutes must be between 1 and 10080")
        merged[sev] = int(str(minutes).strip())
    return merged


def _validate_http_url(value: str, *, require_https: bool) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _custom("url", "must be an http(s) URL such as https://example.org")
    if require_https and parts.scheme != "https" and parts.hostname not in _LOCAL_HOSTS:
        raise _custom("https_url", "must start with https:// (http:// is accepted only for localhost)")
    if parts.query or parts.fragment:
        raise _custom("url", "must not contain a query string or fragment")
    return value.rstrip("/")


def normalize_database_url(url: str) -> str:
    """Rewrite a database URL to the async driver subbot uses.

    ``postgres://`` and ``postgresql://`` become ``postgresql+asyncpg://`` (a libpq ``sslmode=`` query
    parameter is renamed to asyncpg's ``ssl=``), and ``sqlite://`` becomes ``sqlite+aiosqlite://``.
    Raises ``PydanticCustomError`` for anything else.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _custom(
            "database_url",
            "must be a URL such as sqlite+aiosqlite:///data/subbot.db or postgresql://user:pass@host:5432/db",
        )
    lowered = scheme.lower()
    if lowered in ("postgres", "postgresql", "postgresql+asyncpg"):
        normalized = f"postgresql+asyncpg://{rest}"
        parts = urlsplit(normalized)
        try:
            parts.port  # noqa: B018 - parsing validates the port
        except ValueError:
            raise _custom("database_url", "has an invalid port") from None
        if not parts.hostname:
            raise _custom("database_url", "must name a host, e.g. postgresql://user:pass@host:5432/db")
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(key == "sslmode" for key, _ in query):
            has_ssl = any(key == "ssl" for key, _ in query)
            query = [
                ("ssl", val) if key == "sslmode" else (key, val)
                for key, val in query
                if not (key == "sslmode" and has_ssl)
            ]
            normalized = urlunsplit(parts._replace(query=urlencode(query)))
        return normalized
    if lowered in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    raise _custom(
        "database_url",
        "must use sqlite:// (sqlite+aiosqlite://) or postgres:// / postgresql:// (postgresql+asyncpg://)",
    )


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


class _SecretFileSource(PydanticBaseSettingsSource):
    """Reads ``NAME_FILE`` variables (Docker/Kubernetes secrets) found by an env or dotenv source."""

    def __init__(self, settings_cls: type[BaseSettings], env_source: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env_source = env_source

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not isinstance(self._env_source, EnvSettingsSource):
            return {}
        env_vars: Mapping[str, str | None] = self._env_source.env_vars
        found: dict[str, Any] = {}
        for field_name in FILE_FIELDS:
            file_var = field_name.upper() + "_FILE"
            path_text = env_vars.get(f"{field_name}_file")
            if path_text is None or not path_text.strip():
                continue
            if env_vars.get(field_name) is not None:
                raise ConfigError(
                    f"{field_name.upper()}: set either {field_name.upper()} or {file_var}, not both"
                )
            path = Path(path_text.strip()).expanduser()
            try:
                content = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{file_var}: cannot read {str(path)!r}: {exc.strerror or exc}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{file_var}: {str(path)!r} is not a UTF-8 text file") from None
            if not content:
                raise ConfigError(f"{file_var}: {str(path)!r} is empty")
            found[field_name] = content
        return found


class Settings(BaseSettings):
    """All subbot configuration.  Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        env_ignore_empty=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    # --- Telegram ---------------------------------------------------------------------------------
    bot_token: SecretStr | None = Field(default=None, description="Bot token from @BotFather.")
    group_id: int | None = Field(default=None, description="Default private group/channel chat id.")
    extra_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    join_request_chat_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Chats entered by join request (approved for members with access), not a one-use link.",
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    admin_user_id: int | None = Field(default=None, description="Legacy single admin id (merged).")
    telegram_api_url: str = "https://api.telegram.org"
    public_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("public_url", "webhook_base_url"),
        description="Public https base URL; when set the bot runs in webhook mode.",
    )
    webhook_secret: SecretStr | None = None

    # --- HTTP server ------------------------------------------------------------------------------
    host: str = "0.0.0.0"  # noqa: S104 - the container/server listens on all interfaces by default
    port: int = Field(default=8080, ge=1, le=65535)

    # --- Database ---------------------------------------------------------------------------------
    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    database_pool_size: int = Field(default=5, ge=1, le=100)
    database_statement_cache: bool | None = Field(
        default=None, description="None = auto: disabled behind the Supabase transaction pooler (port 6543)."
    )
    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None

    # --- Operations -------------------------------------------------------------------------------
    maintenance_mode: bool = False
    maintenance_message: str = "Bot is under maintenance. Please try again in 30 minutes."
    alert_webhook_url: SecretStr | None = None
    alert_telegram_chat_id: int | None = None
    incident_slack_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack incoming webhook of the incident status channel (default ALERT_WEBHOOK_URL).",
    )
    incident_telegram_chat_id: int | None = Field(
        default=None,
        description="Telegram status chat for incident messages (default ALERT_TELEGRAM_CHAT_ID).",
    )
    incident_escalation: Annotated[tuple[EscalationLevel, ...], NoDecode] = DEFAULT_ESCALATION
    incident_update_minutes: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_UPDATE_MINUTES)
    )
    incident_resolve_after_minutes: int = Field(
        default=15,
        ge=0,
        le=1440,
        description="Checks passing this long resolve the monitor's incident; 0 = never.",
    )
    incident_auto_open: bool = Field(default=True, description="The monitor opens incidents when it alerts.")

    # --- Payments ---------------------------------------------------------------------------------
    airwallex_client_id: str | None = None
    airwallex_api_key: SecretStr | None = None
    airwallex_webhook_secret: SecretStr | None = None
    airwallex_base_url: str = "https://api-demo.airwallex.com"
    refund_revokes_access: bool = Field(default=True, description="A full refund ends the access it bought.")
    sweep_interval_seconds: float = Field(
        default=60, ge=1, le=3600, description="How often reminders and expiries are swept."
    )
    reconcile_interval_seconds: float = Field(
        default=300,
        ge=5,
        le=86400,
        description="How often pending card orders are checked against Airwallex.",
    )

    # --- Dashboard --------------------------------------------------------------------------------
    admin_password: SecretStr | None = Field(
        default=None, exclude=True, repr=False, description="Unsupported; rejected at start-up."
    )
    session_key: SecretStr | None = None
    dashboard_idle_timeout_minutes: int = Field(
        default=30, ge=1, le=1440, description="A dashboard session unused this long is signed out."
    )
    dashboard_session_max_hours: int = Field(
        default=12, ge=1, le=720, description="A dashboard session ends this long after sign-in, used or not."
    )
    dashboard_cookie_secure: bool | None = Field(
        default=None, description="Secure session cookie; None = auto: when PUBLIC_URL is https."
    )
    dashboard_login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed logins per user name within the window before lockout."
    )
    dashboard_login_max_failures_per_ip: int = Field(
        default=20,
        ge=1,
        le=10000,
        description="Failed logins per client IP within the window before lockout.",
    )
    dashboard_login_window_minutes: int = Field(default=15, ge=1, le=1440)
    dashboard_lockout_minutes: int = Field(default=15, ge=1, le=1440)

    # --- Business rules ---------------------------------------------------------------------------
    plans_file: Path | None = None
    invite_link_ttl_minutes: int = Field(default=30, ge=1, le=1440)
    reminder_offsets_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [3, 1])
    expiry_grace_hours: int = Field(default=24, ge=0, le=720)
    order_ttl_minutes: int = Field(default=60, ge=1, le=10080)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_concurrency: int = Field(default=4, ge=1, le=64)
    broadcast_rate: float = Field(
        default=25, ge=1, le=30, description="Broadcast messages/second, per running instance."
    )
    throttle_rate: float = Field(default=1.0, gt=0, le=1000)
    throttle_burst: int = Field(default=5, ge=1, le=1000)

    # --- Logging and files ------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    log_dir: Path = Path("logs")
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    log_backup_count: int = Field(default=5, ge=0, le=1000)
    data_dir: Path = Path("data")
    lock_dir: Path = Path(".")
    environment: Literal["development", "production", "test"] = "development"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _SecretFileSource(settings_cls, env_settings),
            env_settings,
            _SecretFileSource(settings_cls, dotenv_settings),
            dotenv_settings,
            file_secret_settings,
        )

    # --- field validators -------------------------------------------------------------------------

    @field_validator(*SECRET_FIELDS, mode="before")
    @classmethod
    def _strip_secret(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return value.strip()
        return value

    @field_validator(*SECRET_FIELDS, mode="after")
    @classmethod
    def _reject_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and _looks_like_placeholder(value.get_secret_value()):
            raise _custom(
                "placeholder",
                "looks like a placeholder or is empty; set the real secret or remove the variable",
            )
        return value

    @field_validator("admin_password", mode="after")
    @classmethod
    def _reject_admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise _custom(
                "unsupported",
                "is not supported (subbot has no default or shared admin password); remove it and create "
                "a dashboard user with `subbot admin create-user`",
            )
        return value

    @field_validator("bot_token", mode="after")
    @classmethod
    def _check_bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _BOT_TOKEN_RE.match(value.get_secret_value()):
            raise _custom(
                "bot_token",
                "does not look like a Telegram bot token (expected '<numeric bot id>:<35 characters>' "
                "as given by @BotFather)",
            )
        return value

    @field_validator("webhook_secret", mode="after")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET_RE.match(value.get_secret_value()):
            raise _custom(
                "webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)"
            )
        return value

    @field_validator("session_key", mode="after")
    @classmethod
    def _check_session_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise _custom(
                "session_key",
                "must be at least 32 characters (generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            )
        return value

    @field_validator("incident_escalation", mode="before")
    @classmethod
    def _parse_escalation(cls, value: Any) -> Any:
        return _parse_escalation(value)

    @field_validator("incident_update_minutes", mode="before")
    @classmethod
    def _parse_update_minutes(cls, value: Any) -> Any:
        return _parse_update_minutes(value)

    @field_validator("alert_webhook_url", "incident_slack_webhook_url", mode="after")
    @classmethod
    def _check_alert_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_validate_http_url(value.get_secret_value(), require_https=False))

    @field_validator("group_id", "alert_telegram_chat_id", "incident_telegram_chat_id", mode="after")
    @classmethod
    def _check_chat_id(cls, value: int | None) -> int | None:
        if value is not None and value >= 0:
            raise _custom(
                "chat_id", "must be a negative chat id (groups and channels look like -1001234567890)"
            )
        return value

    @field_validator(
        "extra_chat_ids", "join_request_chat_ids", "admin_ids", "reminder_offsets_days", mode="before"
    )
    @classmethod
    def _parse_int_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("extra_chat_ids", "join_request_chat_ids", mode="after")
    @classmethod
    def _check_chat_ids(cls, value: list[int]) -> list[int]:
        if any(chat_id >= 0 for chat_id in value):
            raise _custom("chat_id", "must contain negative chat ids (like -1001234567890)")
        return _dedupe(value)

    @field_validator("admin_ids", mode="after")
    @classmethod
    def _check_admin_ids(cls, value: list[int]) -> list[int]:
        if any(user_id <= 0 for user_id in value):
            raise _custom("user_id", "must contain positive Telegram user ids")
        return _dedupe(value)

    @field_validator("admin_user_id", mode="after")
    @classmethod
    def _check_admin_user_id(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise _custom("user_id", "must be a positive Telegram user id")
        return value

    @field_validator("reminder_offsets_days", mode="after")
    @classmethod
    def _check_reminders(cls, value: list[int]) -> list[int]:
        if any(not 0 <= days <= 365 for days in value):
            raise _custom("reminders", "must contain whole numbers of days between 0 and 365")
        return sorted(set(value), reverse=True)

    @field_validator("database_url", mode="after")
    @classmethod
    def _normalize_database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("public_url", mode="after")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        return None if value is None else _validate_http_url(value, require_https=True)

    @field_validator("supabase_url", "telegram_api_url", mode="after")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        return None if value is None else _validate_http_url(value, require_https=False)

    @field_validator("airwallex_base_url", mode="after")
    @classmethod
    def _check_https_url(cls, value: str) -> str:
        return _validate_http_url(value, require_https=True)

    @field_validator("host", "maintenance_message", mode="after")
    @classmethod
    def _non_blank(cls, value: str) -> str:
        if not value.strip():
            raise _custom("blank", "must not be blank")
        return value.strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            return "WARNING" if value == "WARN" else value
        return value

    @field_validator("log_format", "environment", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("plans_file", mode="after")
    @classmethod
    def _check_plans_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if value.suffix.lower() not in (".toml", ".json"):
            raise _custom("plans_file", "must be a .toml or .json file")
        if not value.is_file():
            raise _custom("plans_file", "file not found")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.admin_user_id is not None:
            self.admin_ids = _dedupe([*self.admin_ids, self.admin_user_id])
        if self.database_statement_cache is None:
            self.database_statement_cache = not self.database_uses_pooler
        if (self.airwallex_client_id is None) != (self.airwallex_api_key is None):
            missing = "AIRWALLEX_API_KEY" if self.airwallex_api_key is None else "AIRWALLEX_CLIENT_ID"
            raise _custom(
                "airwallex",
                f"AIRWALLEX_CLIENT_ID and AIRWALLEX_API_KEY must be set together ({missing} is missing)",
            )
        return self

    # --- derived values ---------------------------------------------------------------------------

    @property
    def database_backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def database_uses_pooler(self) -> bool:
        """True behind the Supabase transaction pooler (port 6543): no prepared statements there."""
        if self.database_backend != "postgresql":
            return False
        return urlsplit(self.database_url).port == SUPABASE_TRANSACTION_POOLER_PORT

    @property
    def database_statement_cache_enabled(self) -> bool:
        """Whether asyncpg/SQLAlchemy may cache prepared statements (resolved DATABASE_STATEMENT_CACHE)."""
        if self.database_statement_cache is None:  # only if someone assigned None after validation
            return not self.database_uses_pooler
        return self.database_statement_cache

    @property
    def database_url_masked(self) -> str:
        """DATABASE_URL with the password replaced by ``***`` (safe to log)."""
        return _mask_url_password(self.database_url)

    @property
    def database_password(self) -> str | None:
        password = urlsplit(self.database_url).password
        return unquote(password) if password else None

    @property
    def webhook_mode(self) -> bool:
        """True when PUBLIC_URL is set: Telegram pushes updates instead of long polling."""
        return self.public_url is not None

    @property
    def telegram_webhook_url(self) -> str | None:
        """The URL to register with Telegram's setWebhook (PUBLIC_URL + /webhook/telegram), or None."""
        if self.public_url is None:
            return None
        return self.public_url + TELEGRAM_WEBHOOK_PATH

    @property
    def telegram_webhook_secret(self) -> str:
        """Value for Telegram's ``X-Telegram-Bot-Api-Secret-Token`` header.

        WEBHOOK_SECRET when set; otherwise derived from the bot token with HMAC-SHA256 (64 hex
        characters), stable across restarts and distinct from the token itself.
        """
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value()
        if self.bot_token is None:
            raise ConfigError("WEBHOOK_SECRET: cannot be derived without BOT_TOKEN; set one of them")
        key = self.bot_token.get_secret_value().encode()
        return hmac.new(key, _WEBHOOK_SECRET_DERIVATION_LABEL, hashlib.sha256).hexdigest()

    @property
    def bot_token_id(self) -> str | None:
        """The public numeric bot id (the part of BOT_TOKEN before ':'), or None."""
        if self.bot_token is None:
            return None
        return self.bot_token.get_secret_value().split(":", 1)[0]

    @property
    def airwallex_enabled(self) -> bool:
        return self.airwallex_client_id is not None and self.airwallex_api_key is not None

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    # --- checks for specific commands -------------------------------------------------------------

    def require(self, *names: str) -> None:
        """Raise ConfigError unless every named setting (env or field name) has a value."""
        require(self, *names)

    def require_for_run(self) -> None:
        """Check what ``subbot run`` needs beyond what every command needs (the bot token)."""
        self.require("BOT_TOKEN")

    def require_bot_token(self) -> str:
        """The bot token's value; raises ConfigError (BOT_TOKEN is required) when it is not set."""
        self.require("BOT_TOKEN")
        assert self.bot_token is not None
        return self.bot_token.get_secret_value()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, value
            if name == "database_statement_cache":
                yield "database_url", self.database_url_masked


def _env_names_by_key() -> dict[str, str]:
    """Map every accepted input key (field name or alias, lower case) to the variable to report."""
    names: dict[str, str] = {}
    for field_name, info in Settings.model_fields.items():
        names[field_name] = field_name.upper()
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.lower()] = choice.upper()
    return names


def env_var_names() -> list[str]:
    """Every environment variable Settings reads (aliases included, ``_FILE`` variants excluded)."""
    return sorted(set(_env_names_by_key().values()))


def require(settings: Settings, *names: str) -> None:
    """Raise :class:`ConfigError` naming every setting in ``names`` that is unset or empty."""
    problems: list[str] = []
    for name in names:
        field = name.lower()
        if field not in Settings.model_fields:
            raise ValueError(f"unknown setting {name!r}")
        value = getattr(settings, field)
        if value is None or value == [] or value == "":
            problems.append(f"{field.upper()}: {_REQUIRED_HINT}")
    if problems:
        raise ConfigError("; ".join(problems), problems)


def secret_values(settings: Settings) -> list[str]:
    """All secret strings that are set (longest first), for log redaction.  Never log the result."""
    values: set[str] = set()
    for field_name in SECRET_FIELDS:
        secret = getattr(settings, field_name)
        if isinstance(secret, SecretStr) and secret.get_secret_value():
            values.add(secret.get_secret_value())
    if settings.bot_token is not None:
        token = settings.bot_token.get_secret_value()
        values.add(token.split(":", 1)[-1])
        values.add(settings.telegram_webhook_secret)
    raw_password = urlsplit(settings.database_url).password
    if raw_password:
        values.update({raw_password, unquote(raw_password)})
    return sorted((value for value in values if value), key=lambda v: (-len(v), v))


# --- ValidationError -> one human line --------------------------------------------------------------

_INT_ERRORS = frozenset({"int_parsing", "int_type", "int_from_float", "int_parsing_size"})
_BOUND_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


def _field_bounds(field_name: str) -> tuple[Any, Any]:
    info = Settings.model_fields.get(field_name)
    low: Any = None
    high: Any = None
    if info is not None:
        for meta in info.metadata:
            low = getattr(meta, "ge", low)
            high = getattr(meta, "le", high)
    return low, high


def _describe_error(error: Mapping[str, Any], field_name: str | None) -> str:
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return _REQUIRED_HINT
    if kind in _INT_ERRORS:
        return "must be a whole number"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind in _BOUND_ERRORS and field_name is not None:
        low, high = _field_bounds(field_name)
        if low is not None and high is not None:
            return f"must be between {low} and {high}"
        words = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "greater than",
            "less_than": "less than",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return f"must be {words} {bound}"
    message = str(error.get("msg", "is invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if message.startswith("Input "):  # pydantic's built-in wording: "Input should be ..."
        message = "must" + message[len("Input should") :] if message.startswith("Input should") else message
    return message


def _shown_input(field_name: str | None, value: Any) -> str | None:
    if field_name is None or field_name in SECRET_FIELDS:
        return None
    if isinstance(value, (dict, SecretStr)) or value is None:
        return None
    if field_name == "database_url" and isinstance(value, str):
        value = _mask_url_password(value)
    shown = repr(value)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _format_validation_error(exc: ValidationError) -> ConfigError:
    keys = _env_names_by_key()
    problems: list[str] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        if not loc:  # model-level checks already name their variables
            problems.append(_describe_error(error, None))
            continue
        key = str(loc[0]).lower()
        var = keys.get(key, key.upper())
        if var in seen:
            continue
        seen.add(var)
        field_name = key if key in Settings.model_fields else None
        if field_name is None and key in keys:  # an alias such as webhook_base_url
            field_name = next(
                (name for name, info in Settings.model_fields.items() if _has_alias(info, key)), None
            )
        text = f"{var}: {_describe_error(error, field_name)}"
        shown = None if error.get("type") == "missing" else _shown_input(field_name, error.get("input"))
        if shown is not None:
            text += f", got {shown}"
        problems.append(text)
    return ConfigError("; ".join(problems), problems)


def _has_alias(info: Any, key: str) -> bool:
    alias = info.validation_alias
    return isinstance(alias, AliasChoices) and any(
        isinstance(choice, str) and choice.lower() == key for choice in alias.choices
    )


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from overrides, ``NAME_FILE`` secrets, the environment and ``.env``.

    Overrides use field names (``port=8081``); ``_env_file=None`` skips ``.env``.  Raises
    :class:`ConfigError` with one human-readable message instead of pydantic's ``ValidationError``.
    Does not require BOT_TOKEN; call :meth:`Settings.require_for_run` where the bot is started.
    """
    known = set(_env_names_by_key())
    unknown = sorted(key for key in overrides if not key.startswith("_") and key.lower() not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _format_validation_error(exc) from None
