from __future__ import annotations

from sqlalchemy import inspect

from subbot.store.db import create_database
from subbot.store.migrate import SchemaState, head_revision, schema_state, upgrade
from subbot.store.models import Base


async def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    database = create_database(db_url)
    try:
        assert (await schema_state(database))[0] is SchemaState.EMPTY
        assert await upgrade(database) == head_revision()
        assert (await schema_state(database)) == (SchemaState.CURRENT, head_revision())
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        # Upgrading again is a no-op.
        assert await upgrade(database) == head_revision()
    finally:
        await database.dispose()


async def test_unknown_revision_is_reported_as_newer_than_code(db_url: str) -> None:
    database = create_database(db_url)
    try:
        await upgrade(database)
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_future'")
        assert (await schema_state(database)) == (SchemaState.AHEAD, "ffff_future")
    finally:
        await database.dispose()
