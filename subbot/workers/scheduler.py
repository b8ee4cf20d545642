"""Periodic sweeps. Each is idempotent, so several instances may run them without harm."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Sweep:
    name: str
    every: float  # seconds
    run: Callable[[], Awaitable[object]]


class Scheduler:
    def __init__(self, sweeps: list[Sweep]) -> None:
        self.sweeps = sweeps
        self.heartbeat: float | None = None  # loop time of the last pass, for /health
        self._stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = {s.name: loop.time() for s in self.sweeps}
        while not self._stop.is_set():
            now = loop.time()
            self.heartbeat = now
            for sweep in self.sweeps:
                if now >= due[sweep.name]:
                    due[sweep.name] = now + sweep.every
                    try:
                        await sweep.run()
                    except Exception:  # a failing sweep is logged and retried on its next turn
                        log.exception("sweep %s failed", sweep.name)
            wait = max(0.05, min(due.values()) - loop.time())
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=min(wait, 5.0))
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
