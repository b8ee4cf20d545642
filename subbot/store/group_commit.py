"""Group commit on SQLite: concurrent executions of one hot statement share one write transaction.

Every `/start` writes its user row. On SQLite all writers queue on one asyncio lock, and each write is a
thread round trip to aiosqlite while the others wait: with 32 updates in flight that convoy cost 1.1 ms
of CPU per update (measured with ``python -m bench.profile_start --concurrency 32``), three times the
rest of the handler. Here the statements that arrive while a write is running wait for the next one, and
each write sends everything queued as one ``executemany`` in one transaction. A caller still returns only
after its row is committed. If a batch fails, its rows are retried one by one, so a bad row fails only
its own caller.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.sql.dml import UpdateBase

MAX_BATCH = 256  # rows per transaction: bounds how long one write holds the lock

WriteMany = Callable[[UpdateBase, Sequence[Mapping[str, Any]]], Awaitable[None]]
WriteOne = Callable[[UpdateBase, Mapping[str, Any]], Awaitable[None]]


class GroupCommit:
    def __init__(self, statement: UpdateBase, write_many: WriteMany, write_one: WriteOne) -> None:
        self.statement = statement
        self._write_many = write_many
        self._write_one = write_one
        self._queue: list[tuple[Mapping[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, params: Mapping[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((params, done))
        if self._task is None or self._task.done():
            # a fresh context: the writer must not inherit the first caller's (e.g. its nested-write guard)
            self._task = loop.create_task(self._drain(), name="group-commit", context=contextvars.Context())
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if len(batch) == 1:  # alone: one autocommit statement is one thread hop, a transaction four
                await self._one_by_one(batch)
                continue
            try:
                await self._write_many(self.statement, [params for params, _ in batch])
            except Exception:
                await self._one_by_one(batch)
                continue
            for _, done in batch:
                if not done.done():  # a caller that was cancelled has given up on its answer
                    done.set_result(None)

    async def _one_by_one(self, batch: list[tuple[Mapping[str, Any], asyncio.Future[None]]]) -> None:
        for params, done in batch:
            try:
                await self._write_one(self.statement, params)
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)
