"""aiohttp load generator: closed-loop (max throughput) and open-loop (fixed rate) POSTs of prepared bodies.

Latency is measured per POST, from the moment the request is due until the full response is read:
in closed loop a request is due when a worker picks it up; in open loop it is due at its scheduled
time, so a server (or a client) that falls behind shows up in the latency instead of silently lowering
the rate (no coordinated omission).

The generator's own garbage collector is kept out of the measurement (:func:`no_gc_pauses`): with the
prepared bodies, the tasks and the latencies of a run in memory, one full collection here took 270-310 ms
(seen with ``gc.callbacks`` on 2026-11-27). Every request scheduled during it went out that much late, and
the open loop rightly charged the wait to the server: the steady phase's p99 was this process's pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    wall: float = 0.0  # seconds from the first send to the last response
    max_lag: float = 0.0  # open loop: worst delay between a scheduled and the actual send
    client_cpu: float = 0.0  # CPU seconds the load generator used

    @property
    def throughput(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds (nan when there are none)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Collect once before a phase, then no automatic collection until it ends (phases are bounded)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    due: float,
    result: LoadResult,
) -> None:
    result.sent += 1
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.errors[type(exc).__name__] += 1
        return
    if status == 200:
        result.ok += 1
        result.latencies.append(time.perf_counter() - due)
    else:
        result.errors[f"HTTP {status}"] += 1


def _headers(extra: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **extra}


async def closed_loop(
    url: str, bodies: Sequence[bytes], headers: dict[str, str], concurrency: int
) -> LoadResult:
    """``concurrency`` workers, each sending its next body as soon as the previous answer arrives."""
    result = LoadResult()
    hdrs = _headers(headers)
    pending = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:

        async def worker() -> None:
            for body in pending:  # a shared iterator: every body is sent exactly once
                await _post(session, url, body, hdrs, time.perf_counter(), result)

        with no_gc_pauses():
            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            result.wall = time.perf_counter() - t0
            result.client_cpu = time.process_time() - cpu0
    return result


async def open_loop(
    url: str, bodies: Sequence[bytes], headers: dict[str, str], rate: float, max_connections: int = 512
) -> LoadResult:
    """Send body ``i`` at ``start + i / rate`` whatever happened to earlier requests."""
    result = LoadResult()
    hdrs = _headers(headers)
    connector = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        tasks: list[asyncio.Task[None]] = []
        with no_gc_pauses():
            cpu0, t0 = time.process_time(), time.perf_counter()
            for i, body in enumerate(bodies):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                result.max_lag = max(result.max_lag, time.perf_counter() - due)
                tasks.append(asyncio.create_task(_post(session, url, body, hdrs, due, result)))
            await asyncio.gather(*tasks)
            result.wall = time.perf_counter() - t0
            result.client_cpu = time.process_time() - cpu0
    return result
