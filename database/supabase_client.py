"""``SupabaseClient``: the runbook's name for subbot's database connection (any DATABASE_URL).

Importing this module has no side effect (no settings are read, nothing connects), so
``python -c "from database.supabase_client import SupabaseClient; print('OK')"`` works with no
environment at all.  Use it from a one-off script::

    client = SupabaseClient()
    await client.connect()
    print(await client.health())
    await client.close()
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from subbot.config import Settings
    from subbot.store.db import Database

__all__ = ["SupabaseClient"]


class SupabaseClient:
    """A thin wrapper around subbot's :class:`~subbot.store.db.Database`, built from settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from subbot.config import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("call `await client.connect()` first")
        return self._db

    async def connect(self) -> None:
        """Open the database named by DATABASE_URL and check one round trip."""
        from sqlalchemy import text

        from subbot.ops.supabase import open_database

        if self._db is not None:
            return
        db = open_database(self.settings)
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except BaseException:
            await db.dispose()
            raise
        self._db = db

    async def health(self) -> dict[str, Any]:
        """Backend, masked URL, latency, server version and schema state (connects if needed)."""
        from subbot.ops.supabase import probe

        await self.connect()
        return (await probe(self.db, self.settings)).as_dict()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None

    async def __aenter__(self) -> SupabaseClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
