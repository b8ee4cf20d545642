"""Signed webhook delivery with retries, back-off and switches for duplicates, disorder and loss."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
from collections.abc import Callable
from typing import Any

import httpx

from subbot.sandbox.telegram.testing import wait_for

from .events import Delivery, Job, Queue, StoredEvent, WebhookMode

__all__ = ["Delivery", "StoredEvent", "WebhookMode", "Webhooks"]


class Webhooks:
    """Delivers events to the webhook URL: one sequential queue per URL, retries with back-off."""

    def __init__(self, now: Callable[[], float], secret: str) -> None:
        self.now = now
        self.secret = secret
        self.url: str | None = None
        self.settings = WebhookMode()
        self.timeout = 10.0
        self.backoff: tuple[float, float] = (0.2, 5.0)  # first retry delay, cap (doubling)
        self.max_attempts = 8
        self.deliveries: list[Delivery] = []
        self.given_up: list[tuple[str, int]] = []  # (event id, copy) that ran out of attempts
        self.dropped: list[str] = []  # event ids never sent because of drop=True
        self._held: list[StoredEvent] = []
        self._hold_timer: asyncio.TimerHandle | None = None
        self._queues: dict[str, Queue] = {}
        self._seq = itertools.count()
        self._client: httpx.AsyncClient | None = None

    # ---------------------------------------------------------------- settings
    def mode(
        self,
        duplicates: int = 1,
        out_of_order: bool = False,
        delay: float = 0.0,
        drop: bool = False,
        concurrent: bool = False,
        hold: float = 1.0,
    ) -> None:
        """Set the delivery switches (omitted ones go back to normal); releases held events first.

        duplicates: each event is delivered N times (same id and body, fresh x-timestamp each).
        out_of_order: events are held and each batch is queued in reverse order, released by
            :meth:`release`, ``flush()``, the next ``mode()`` call or after ``hold`` seconds.
        delay: seconds before each event's first attempt. drop: never deliver (lost webhooks).
        concurrent: the duplicates of an event are sent at the same time.
        """
        if isinstance(duplicates, bool) or not isinstance(duplicates, int) or not 1 <= duplicates <= 100:
            raise ValueError("duplicates must be an integer between 1 and 100")
        for name, value in (("delay", delay), ("hold", hold)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")
        for name, flag in (("out_of_order", out_of_order), ("drop", drop), ("concurrent", concurrent)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be a boolean")
        self.release()
        self.settings = WebhookMode(duplicates, out_of_order, float(delay), drop, concurrent, float(hold))

    def set_url(self, url: str | None) -> None:
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            raise ValueError("the webhook URL must be an http(s) URL or None")
        self.url = url

    def sign(self, body: bytes, timestamp_ms: str) -> str:
        """Lowercase hex HMAC-SHA256 over ``timestamp_ms + body`` keyed with the webhook secret."""
        message = timestamp_ms.encode() + body
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            **self.settings.__dict__,
            "timeout": self.timeout,
            "backoff": list(self.backoff),
            "max_attempts": self.max_attempts,
            "held": [e.id for e in self._held],
            "queued": sum(len(q.jobs) + q.busy for q in self._queues.values()),
            "given_up": [list(g) for g in self.given_up],
            "dropped": list(self.dropped),
        }

    # -------------------------------------------------------------- queueing
    def publish(self, event: StoredEvent) -> None:
        """A new event: queue it according to the current switches."""
        if self.url is None:
            return
        if self.settings.drop:
            self.dropped.append(event.id)
            return
        if self.settings.out_of_order:
            self._held.append(event)
            if self._hold_timer is None:
                with contextlib.suppress(RuntimeError):
                    loop = asyncio.get_running_loop()
                    self._hold_timer = loop.call_later(self.settings.hold, self.release)
            return
        self._enqueue(event, self.url)

    def release(self) -> None:
        """Queue the held (out_of_order) events, newest first."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        held, self._held = self._held, []
        if self.url is not None:
            self.deliver_in_order(list(reversed(held)))

    def deliver_in_order(self, events: list[StoredEvent]) -> None:
        """Queue stored events for delivery in exactly this order (with the current switches)."""
        if self.url is None:
            raise ValueError("no webhook URL is set")
        for event in events:
            self._enqueue(event, self.url)

    def _enqueue(self, event: StoredEvent, url: str) -> None:
        mode = self.settings
        not_before = self._loop_time() + mode.delay
        queue = self._queues.setdefault(url, Queue())
        for copy in range(1, mode.duplicates + 1):
            queue.put(Job(next(self._seq), event, url, copy, not_before, mode.concurrent))
        self._start(url, queue)

    def _start(self, url: str, queue: Queue) -> None:
        if queue.task is None or queue.task.done():
            with contextlib.suppress(RuntimeError):
                queue.task = asyncio.get_running_loop().create_task(self._worker(queue))

    @staticmethod
    def _loop_time() -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return 0.0

    def idle(self) -> bool:
        return not self._held and all(not q.jobs and q.busy == 0 for q in self._queues.values())

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Release held events, then wait until every queued delivery is done or given up."""
        self.release()
        for url, queue in self._queues.items():
            if queue.jobs:
                self._start(url, queue)
        await wait_for(self.idle, timeout=timeout)

    # -------------------------------------------------------------- delivery
    async def _worker(self, queue: Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = next((j for j in queue.jobs if j.not_before <= now), None)
            if ready is None:
                queue.wake.clear()
                wait = min((j.not_before for j in queue.jobs), default=None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.wake.wait(), None if wait is None else wait - now)
                continue
            batch = [ready]
            if ready.concurrent:
                batch += [
                    j
                    for j in queue.jobs
                    if j is not ready
                    and j.concurrent
                    and j.event.id == ready.event.id
                    and j.not_before <= now
                ]
            for job in batch:
                queue.jobs.remove(job)
            queue.busy += len(batch)
            try:
                results = await asyncio.gather(*(self._attempt(job) for job in batch))
                for job, done in zip(batch, results, strict=True):
                    if done.status_code != 200:
                        self._retry(job)
            finally:
                queue.busy -= len(batch)

    def _retry(self, job: Job) -> None:
        if job.attempt >= self.max_attempts:
            self.given_up.append((job.event.id, job.copy))
            return
        first, cap = self.backoff
        job.not_before = self._loop_time() + min(first * 2 ** (job.attempt - 1), cap)
        job.attempt += 1
        queue = self._queues.setdefault(job.url, Queue())
        queue.put(job)
        self._start(job.url, queue)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(trust_env=False, timeout=self.timeout)
        return self._client

    async def _attempt(self, job: Job) -> Delivery:
        timestamp = str(int(self.now() * 1000))
        headers = {
            "Content-Type": "application/json",
            "x-timestamp": timestamp,
            "x-signature": self.sign(job.event.body, timestamp),
        }
        at = self.now()
        status: int | None = None
        error: str | None = None
        try:
            resp = await self._http().post(
                job.url, content=job.event.body, headers=headers, timeout=self.timeout
            )
            status = resp.status_code
        except httpx.TimeoutException:
            error = "timeout"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"
        done = Delivery(
            job.event.id, job.attempt, status, at, job.event.name, job.url, job.copy, timestamp, error
        )
        self.deliveries.append(done)
        return done

    async def redeliver(self, event: StoredEvent) -> Delivery:
        """Send a stored event now (copy 0); if that fails it is retried like any delivery."""
        if self.url is None:
            raise ValueError("no webhook URL is set")
        job = Job(next(self._seq), event, self.url, 0, self._loop_time(), False)
        done = await self._attempt(job)
        if done.status_code != 200:
            self._retry(job)
        return done

    async def aclose(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for queue in self._queues.values():
            queue.task = None
            queue.busy = 0
        if self._client is not None:
            await self._client.aclose()
            self._client = None
