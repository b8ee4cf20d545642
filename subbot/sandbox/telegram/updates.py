"""Per-bot update queue: allowed_updates filtering, long polling and webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .core import ApiError

# Telegram's default when allowed_updates was never specified (or an empty list was given)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CONFLICT_OTHER = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)

ResponseHook = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    parallel: int = 1
    ip_address: str | None = None


@dataclass
class UpdateHub:
    """Updates waiting for one bot, delivered by getUpdates or by webhook."""

    now: Callable[[], float]
    pending: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100_000_001
    allowed: list[str] | None = None
    webhook: Webhook | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
    backoff: tuple[float, float] = (0.2, 5.0)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _poller: asyncio.Event | None = None
    _workers: list[asyncio.Task[None]] = field(default_factory=list)
    _in_flight: set[int] = field(default_factory=set)
    _closing: bool = False

    # --------------------------------------------------------------- queueing
    def wants(self, kind: str) -> bool:
        if not self.allowed:
            return kind not in NOT_BY_DEFAULT
        return kind in self.allowed

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update if the bot's allowed_updates accept it; return it (or None if filtered)."""
        if not self.wants(kind):
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self.pending.append(update)
        self._notify()
        return update

    def set_allowed(self, allowed: list[str] | None) -> None:
        if allowed is not None:
            self.allowed = list(allowed)

    def drop_pending(self) -> None:
        self.pending.clear()
        self._notify()

    def _notify(self) -> None:
        ev = self._changed
        self._changed = asyncio.Event()
        ev.set()

    def reopen(self) -> None:
        """Undo :meth:`close` (the sandbox is served again)."""
        self._closing = False

    def close(self) -> None:
        """Wake every long poll (server shutting down) and stop webhook workers."""
        self._closing = True
        self._notify()
        if self._poller is not None:
            self._poller.set()
        self._stop_workers()

    # ------------------------------------------------------------ long polling
    async def get_updates(self, offset: int | None, limit: int, wait: float) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        if self._poller is not None:
            self._poller.set()  # terminate the older request
        me = asyncio.Event()
        self._poller = me
        try:
            self._confirm(offset)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(0.0, wait)
            while True:
                if me.is_set() and not self._closing:
                    raise ApiError(409, CONFLICT_OTHER)
                if self.webhook is not None:
                    raise ApiError(409, CONFLICT_WEBHOOK)
                batch = self.pending[: max(1, min(limit, 100))]
                left = deadline - loop.time()
                if batch or left <= 0 or self._closing:
                    return batch
                changed = asyncio.ensure_future(self._changed.wait())
                stopped = asyncio.ensure_future(me.wait())
                try:
                    await asyncio.wait({changed, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                    stopped.cancel()
        finally:
            if self._poller is me:
                self._poller = None

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            keep = -offset
            if len(self.pending) > keep:
                del self.pending[: len(self.pending) - keep]
            return
        self.pending = [u for u in self.pending if u["update_id"] >= offset]

    # ----------------------------------------------------------------- webhook
    def set_webhook(self, hook: Webhook, client: httpx.AsyncClient, on_response: ResponseHook) -> None:
        self._stop_workers()
        self.webhook = hook
        self.last_error_date = None
        self.last_error_message = None
        if self._poller is not None:
            self._poller.set()
        self._notify()
        for _ in range(max(1, hook.parallel)):
            self._workers.append(asyncio.ensure_future(self._deliver_loop(hook, client, on_response)))

    def delete_webhook(self) -> None:
        self._stop_workers()
        self.webhook = None
        self._notify()

    def _stop_workers(self) -> None:
        for task in self._workers:
            task.cancel()
        self._workers.clear()
        self._in_flight.clear()

    async def aclose(self) -> None:
        tasks = list(self._workers)
        self.close()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _next_for_delivery(self) -> dict[str, Any] | None:
        for update in self.pending:
            if update["update_id"] not in self._in_flight:
                return update
        return None

    async def _deliver_loop(
        self, hook: Webhook, client: httpx.AsyncClient, on_response: ResponseHook
    ) -> None:
        delay = self.backoff[0]
        while self.webhook is hook and not self._closing:
            update = self._next_for_delivery()
            if update is None:
                await self._changed.wait()
                continue
            uid = update["update_id"]
            self._in_flight.add(uid)
            try:
                error, reply = await self._post(hook, client, update)
            finally:
                self._in_flight.discard(uid)
            if self.webhook is not hook:
                return
            if error is None:
                delay = self.backoff[0]
                self.pending = [u for u in self.pending if u["update_id"] != uid]
                self.delivered += 1
                self._notify()
                if reply is not None:
                    with contextlib.suppress(Exception):
                        await on_response(reply)
                continue
            self.last_error_date = int(self.now())
            self.last_error_message = error
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _post(
        self, hook: Webhook, client: httpx.AsyncClient, update: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any] | None]:
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            resp = await client.post(hook.url, content=json.dumps(update), headers=headers)
        except httpx.HTTPError as exc:
            return f"Connection failed: {type(exc).__name__}: {exc}".strip(), None
        if not 200 <= resp.status_code < 300:
            return f"Wrong response from the webhook: {resp.status_code} {resp.reason_phrase}", None
        reply: dict[str, Any] | None = None
        if resp.content:
            with contextlib.suppress(ValueError):
                body = resp.json()
                if isinstance(body, dict) and isinstance(body.get("method"), str):
                    reply = body
        return None, reply

    def info(self) -> dict[str, Any]:
        hook = self.webhook
        out: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if hook is not None:
            out["max_connections"] = hook.max_connections
            if hook.ip_address:
                out["ip_address"] = hook.ip_address
        if self.allowed:
            out["allowed_updates"] = list(self.allowed)
        if self.last_error_date is not None:
            out["last_error_date"] = self.last_error_date
            out["last_error_message"] = self.last_error_message or ""
        return out
