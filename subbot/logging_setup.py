"""Logging: stdout plus rotating files, with secrets redacted from every record.

:func:`configure_logging` installs (and on a second call replaces) these root handlers:

* stdout: everything at or above LOG_LEVEL, as text or one JSON object per line (LOG_FORMAT);
* ``LOG_DIR/telegram_subscription_bot.log``: the same records;
* ``LOG_DIR/telegram_subscription_bot_errors.log``: ERROR and above;
* ``LOG_DIR/telegram_subscription_bot_payments.log``: only the ``subbot.payments`` logger tree;
* ``LOG_DIR/telegram_subscription_bot_audit.log``: only the ``subbot.audit`` logger tree.

The payments and audit loggers always log INFO and above to their own files, even when LOG_LEVEL is
higher; stdout and the main file still honour LOG_LEVEL.  Every handler carries a
:class:`RedactingFilter` that replaces configured secrets and anything shaped like a Telegram bot
token with ``[REDACTED]`` in the message, its arguments, the exception text and string extras.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from subbot.config import Settings, secret_values

__all__ = [
    "AUDIT_LOGGER",
    "LOG_FILES",
    "PAYMENTS_LOGGER",
    "REDACTED",
    "JsonFormatter",
    "LoggerTreeFilter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "redact",
    "reset_logging",
]

REDACTED = "[REDACTED]"
PAYMENTS_LOGGER = "subbot.payments"
AUDIT_LOGGER = "subbot.audit"
LOG_FILES = {
    "main": "telegram_subscription_bot.log",
    "errors": "telegram_subscription_bot_errors.log",
    "payments": "telegram_subscription_bot_payments.log",
    "audit": "telegram_subscription_bot_audit.log",
}
#: Telegram bot tokens, bare or inside API URLs such as ``/bot123456:ABC.../sendMessage``.
BOT_TOKEN_PATTERN = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{30,}")

# Levels for third-party loggers that are chatty at INFO/DEBUG.
_QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "aiogram.event": logging.WARNING,  # one line per update is noise, and ~15% of the webhook CPU
}
_MARKER = "_subbot_handler"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace each secret (longest first) and any bot-token-shaped string with ``[REDACTED]``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return BOT_TOKEN_PATTERN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so no handler (or later handler) can see a secret.

    The message is rendered with its args, redacted, and stored back with ``args = None``; the
    exception/stack text is rendered, redacted and cached in ``exc_text`` (which formatters prefer over
    re-rendering ``exc_info``); string ``extra`` fields are redacted too.  Never drops a record.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not leak the raw args nor break logging
            message = f"{record.msg!s} (args: {record.args!r})"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self._redact(value))
        return True


class LoggerTreeFilter(logging.Filter):
    """Passes only records from logger ``name`` and its children (``name.*``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.tree = name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == self.tree or record.name.startswith(self.tree + ".")


def _utc_iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO     subbot.bot: message`` (UTC)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_iso(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exc_info (if any) and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload:
                payload[key] = value
        return json.dumps(payload, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at emit time (works with test capture and reconfiguration)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _level_number(name: str) -> int:
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def reset_logging() -> None:
    """Remove and close the handlers installed by :func:`configure_logging` (other handlers stay)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARKER, False):
            root.removeHandler(handler)
            handler.close()


def configure_logging(settings: Settings) -> None:
    """Configure the root logger for ``settings``; calling it again replaces the previous setup."""
    reset_logging()
    level = _level_number(settings.log_level)
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    redactor = RedactingFilter(secret_values(settings))

    log_dir = Path(settings.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)

    def rotating(filename: str) -> logging.Handler:
        return logging.handlers.RotatingFileHandler(
            log_dir / filename,
            maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backup_count,
            encoding="utf-8",
        )

    dedicated_level = min(level, logging.INFO)
    handlers: list[tuple[logging.Handler, int, logging.Filter | None]] = [
        (_StdoutHandler(), level, None),
        (rotating(LOG_FILES["main"]), level, None),
        (rotating(LOG_FILES["errors"]), logging.ERROR, None),
        (rotating(LOG_FILES["payments"]), dedicated_level, LoggerTreeFilter(PAYMENTS_LOGGER)),
        (rotating(LOG_FILES["audit"]), dedicated_level, LoggerTreeFilter(AUDIT_LOGGER)),
    ]

    root = logging.getLogger()
    root.setLevel(level)
    for handler, handler_level, route in handlers:
        handler.setLevel(handler_level)
        # Routing first so records for other files are not rewritten needlessly; redaction always.
        if route is not None:
            handler.addFilter(route)
        handler.addFilter(redactor)
        handler.setFormatter(formatter)
        setattr(handler, _MARKER, True)
        root.addHandler(handler)

    # Payment and audit records always reach their files, whatever LOG_LEVEL says.
    for name in (PAYMENTS_LOGGER, AUDIT_LOGGER):
        logging.getLogger(name).setLevel(dedicated_level)
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, level))
