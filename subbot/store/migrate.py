"""Alembic, driven from code: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from subbot.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaState(StrEnum):
    EMPTY = "empty"
    BEHIND = "behind"
    CURRENT = "current"
    AHEAD = "ahead"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def schema_state(db: Database) -> tuple[SchemaState, str | None]:
    rev = await current_revision(db)
    if rev is None:
        return SchemaState.EMPTY, None
    script = ScriptDirectory.from_config(alembic_config())
    if rev == script.get_current_head():
        return SchemaState.CURRENT, rev
    known = {s.revision for s in script.walk_revisions()}
    return (SchemaState.BEHIND if rev in known else SchemaState.AHEAD), rev


async def upgrade(db: Database, target: str = "head") -> str | None:
    def _run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)
    return await current_revision(db)
