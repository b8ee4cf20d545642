"""Alert transports (Slack incoming webhook, Telegram sendMessage) and delivery with every attempt recorded.

One class per channel, each raising :class:`TransportError` with ``permanent`` set when retrying cannot help
(a deleted Slack webhook, a chat the bot cannot write to). Transient errors are retried a few times; a
permanent one is recorded once and the channel is not used again by this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from subbot.config import Settings
from subbot.domain.clock import Clock
from subbot.store.db import Database
from subbot.store.models import AlertAttempt

log = logging.getLogger(__name__)
TELEGRAM_MAX = 4096


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport(Protocol):
    name: str

    async def send(self, text: str) -> None: ...


def _network(exc: Exception) -> TransportError:
    return TransportError(f"network error: {exc.__class__.__name__}", permanent=False)


class SlackTransport:
    """A Slack incoming webhook: POST ``{"text": ...}`` (plain text; Slack escapes nothing we send)."""

    name = "slack"

    def __init__(self, url: str, http: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self._url, self._http, self._timeout = url, http, timeout

    async def send(self, text: str) -> None:
        try:
            response = await self._http.post(self._url, json={"text": text}, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise _network(exc) from None
        if response.is_success:
            return
        reason = response.text.strip()[:200]
        transient = response.status_code == 429 or response.status_code >= 500
        raise TransportError(f"HTTP {response.status_code} {reason}".strip(), permanent=not transient)


class TelegramTransport:
    """sendMessage to ALERT_TELEGRAM_CHAT_ID as plain text (no parse mode: nothing needs escaping)."""

    name = "telegram"

    def __init__(
        self, api_base: str, token: str, chat_id: int, http: httpx.AsyncClient, timeout: float = 10.0
    ) -> None:
        self._url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"
        self._chat_id, self._http, self._timeout = chat_id, http, timeout

    async def send(self, text: str) -> None:
        if len(text) > TELEGRAM_MAX:
            text = text[: TELEGRAM_MAX - 1] + "…"
        try:
            response = await self._http.post(
                self._url, json={"chat_id": self._chat_id, "text": text}, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise _network(exc) from None  # never the exception text: the URL holds the token
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("ok"):
            return
        code = (
            int(body.get("error_code", response.status_code))
            if isinstance(body, dict)
            else response.status_code
        )
        description = str(body.get("description", "")) if isinstance(body, dict) else ""
        transient = code == 429 or code >= 500
        raise TransportError(f"{code} {description}".strip(), permanent=not transient)


def transports_from_settings(settings: Settings, http: httpx.AsyncClient) -> list[Transport]:
    found: list[Transport] = []
    if settings.alert_webhook_url is not None:
        found.append(SlackTransport(settings.alert_webhook_url.get_secret_value(), http))
    if settings.alert_telegram_chat_id is not None:
        if settings.bot_token is None:
            log.error("ALERT_TELEGRAM_CHAT_ID is set but BOT_TOKEN is not: Telegram alerts cannot be sent")
        else:
            found.append(
                TelegramTransport(
                    settings.telegram_api_url,
                    settings.bot_token.get_secret_value(),
                    settings.alert_telegram_chat_id,
                    http,
                )
            )
    return found


@dataclass
class Delivery:
    transport: str
    ok: bool
    attempts: int
    error: str | None = None
    permanent: bool = False


class AttemptLog:
    """Writes one ``alert_attempts`` row per attempt; a database problem is logged, never raised."""

    def __init__(self, db: Database | None, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def record(
        self, transport: str, component: str, severity: str, message: str, ok: bool, error: str | None
    ) -> None:
        if self.db is None:
            return
        try:
            await asyncio.wait_for(self._insert(transport, component, severity, message, ok, error), 10.0)
        except Exception as exc:
            log.warning(
                "alert attempt not recorded (%s): %s via %s", exc.__class__.__name__, component, transport
            )

    async def _insert(
        self, transport: str, component: str, severity: str, message: str, ok: bool, error: str | None
    ) -> None:
        assert self.db is not None
        async with self.db.write() as session:
            session.add(
                AlertAttempt(
                    at=self.clock.now(),
                    transport=transport,
                    component=component[:32],
                    severity=severity[:8],
                    message=message,
                    ok=ok,
                    error=error,
                )
            )


class Notifier:
    """Sends a message through every transport at once; retries transient errors, never permanent ones."""

    def __init__(
        self,
        transports: list[Transport],
        attempts: AttemptLog,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.transports = transports
        self.attempts = attempts
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.disabled: dict[str, str] = {}  # transport → the permanent error that disabled it

    async def send(self, component: str, severity: str, text: str) -> list[Delivery]:
        if not self.transports:
            log.warning("alert not sent (no ALERT_WEBHOOK_URL or ALERT_TELEGRAM_CHAT_ID): %s", text)
            return []
        return list(await asyncio.gather(*(self._one(t, component, severity, text) for t in self.transports)))

    async def _one(self, transport: Transport, component: str, severity: str, text: str) -> Delivery:
        if transport.name in self.disabled:
            log.debug("alert via %s skipped: disabled by %s", transport.name, self.disabled[transport.name])
            return Delivery(transport.name, False, 0, self.disabled[transport.name], permanent=True)
        error: TransportError | None = None
        for attempt in range(1, self.retries + 1):
            try:
                await transport.send(text)
            except TransportError as exc:
                error = exc
                label = "permanent: " if exc.permanent else ""
                await self.attempts.record(
                    transport.name, component, severity, text, False, label + exc.message
                )
                if exc.permanent:
                    self.disabled[transport.name] = exc.message
                    log.error(
                        "alert channel %s refused permanently (%s); not used again",
                        transport.name,
                        exc.message,
                    )
                    return Delivery(transport.name, False, attempt, exc.message, permanent=True)
                log.warning("alert via %s failed (attempt %s): %s", transport.name, attempt, exc.message)
                if attempt < self.retries:
                    await self.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            await self.attempts.record(transport.name, component, severity, text, True, None)
            return Delivery(transport.name, True, attempt)
        assert error is not None
        return Delivery(transport.name, False, self.retries, error.message)
