"""Maintenance mode, switched at runtime through the ``flags`` table and read by every running instance.

Three sources decide whether members are answered with the maintenance message:

* ``MAINTENANCE_MODE`` from the environment (or ``main.py``'s ``MAINTENANCE_MODE = True``, which is passed as
  an override): fixed for the life of the process;
* the ``maintenance`` row of the ``flags`` table, written by ``subbot maintenance on|off`` and the admin
  command ``/maintenance on|off``: every instance re-reads it every few seconds.

They are OR-ed: the database flag can switch maintenance on, but cannot switch off what the process was
started with.  The message is the flag's own message when it has one, else ``MAINTENANCE_MESSAGE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from subbot.store.db import Database
from subbot.store.models import AuditEntry, Flag
from subbot.store.sql import insert_ignore

FLAG_KEY = "maintenance"
#: How often a running instance re-reads the flag (seconds).
REFRESH_SECONDS = 5.0
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class FlagState:
    """The ``maintenance`` row as stored."""

    enabled: bool
    message: str | None = None
    actor: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Effective:
    """What an instance does: the OR of the process setting and the flag, and the message it sends."""

    enabled: bool
    message: str
    source: str  # "off" | "settings" | "flag" | "settings+flag"


def effective(settings_on: bool, settings_message: str, flag: FlagState | None) -> Effective:
    flag_on = flag is not None and flag.enabled
    if settings_on and flag_on:
        source = "settings+flag"
    elif settings_on:
        source = "settings"
    elif flag_on:
        source = "flag"
    else:
        source = "off"
    message = flag.message if flag_on and flag is not None and flag.message else settings_message
    return Effective(settings_on or flag_on, message, source)


def _parse(row: Flag | None) -> FlagState | None:
    if row is None:
        return None
    value: dict[str, Any] = row.value if isinstance(row.value, dict) else {}
    message = value.get("message")
    actor = value.get("actor")
    return FlagState(
        enabled=bool(value.get("enabled", False)),
        message=message if isinstance(message, str) and message.strip() else None,
        actor=actor if isinstance(actor, str) else None,
        updated_at=row.updated_at,
    )


async def read_flag(db: Database) -> FlagState | None:
    """The stored flag, or None when maintenance was never switched at runtime."""
    async with db.sessions() as session:
        return _parse(await session.get(Flag, FLAG_KEY))


def clean_message(message: str | None) -> str | None:
    if message is None:
        return None
    text = message.strip()
    if not text:
        return None
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"the maintenance message is limited to {MAX_MESSAGE} characters")
    return text


async def write_flag(
    db: Database, *, enabled: bool, message: str | None, actor: str, now: datetime
) -> FlagState:
    """Switch maintenance on or off for every instance; audited.  ``message`` None keeps the default text."""
    text = clean_message(message)
    value: dict[str, Any] = {"enabled": enabled, "message": text, "actor": actor[:128]}
    async with db.write() as session:
        inserted = await insert_ignore(
            session,
            Flag.__table__,  # type: ignore[arg-type]
            {"key": FLAG_KEY, "value": value, "updated_at": now},
            ["key"],
        )
        if not inserted:
            await session.execute(
                update(Flag).where(Flag.key == FLAG_KEY).values(value=value, updated_at=now)
            )
        session.add(
            AuditEntry(
                at=now,
                actor=actor[:128],
                action="maintenance_on" if enabled else "maintenance_off",
                target_user_id=None,
                details={"message": text},
            )
        )
    return FlagState(enabled, text, actor[:128], now)
