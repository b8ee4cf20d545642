"""Delivering incident messages: who receives a notice, the two channels, and pending rows sent once.

Rows are claimed with a conditional UPDATE (state and lease must still be what this instance read), so
several instances sharing the database send each message once; a crashed sender's lease runs out and the
row is taken over. Transient errors are retried with back-off, permanent ones recorded once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from subbot.config import Settings
from subbot.domain.clock import Clock
from subbot.ops.alerts import TELEGRAM_MAX, TransportError
from subbot.ops.incidents.model import Event, Notice
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.rows import Outgoing, add_events
from subbot.ops.incidents.templates import Rendered
from subbot.store.db import Database
from subbot.store.models import IncidentNotification, IncidentRow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)


def outgoing(notice: Notice, rendered: Rendered, policy: IncidentPolicy) -> list[Outgoing]:
    """The status channels, plus the notice level's own Telegram contacts (messaged directly)."""
    level = policy.level(notice.level) if notice.level else None
    direct = list(dict.fromkeys(level.telegram)) if level else []
    chat = policy.channels.telegram_chat
    out: list[Outgoing] = []
    if policy.channels.slack:
        out.append(Outgoing(notice.key, notice.kind, notice.level, "slack", "status", rendered.slack))
    # A reminder is for the on-call; the status chat gets it only when level 1 has no contact of its own.
    if chat is not None and not (notice.kind == "reminder" and direct):
        out.append(Outgoing(notice.key, notice.kind, notice.level, "telegram", str(chat), rendered.telegram))
    for target in direct:
        if target != chat:
            out.append(
                Outgoing(notice.key, notice.kind, notice.level, "telegram", str(target), rendered.telegram)
            )
    return out


class Courier:
    """Sends one text to one channel: the Slack status webhook (mrkdwn) or a Telegram chat (HTML)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        slack_url: str | None,
        telegram_api: str | None,
        token: str | None,
        timeout: float = 10.0,
    ) -> None:
        self.http, self.slack_url, self.timeout = http, slack_url, timeout
        self._tg = f"{telegram_api.rstrip('/')}/bot{token}/sendMessage" if telegram_api and token else None

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> Courier:
        slack = settings.incident_slack_webhook_url or settings.alert_webhook_url
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        return cls(http, slack.get_secret_value() if slack else None, settings.telegram_api_url, token)

    async def send(self, transport: str, target: str, text: str) -> None:
        if transport == "slack":
            await self._slack(text)
        elif transport == "telegram":
            await self._telegram(int(target), text)
        else:
            raise TransportError(f"unknown transport {transport}", permanent=True)

    async def _slack(self, text: str) -> None:
        if self.slack_url is None:
            raise TransportError("no Slack webhook configured", permanent=True)
        try:
            response = await self.http.post(self.slack_url, json={"text": text}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TransportError(f"network error: {exc.__class__.__name__}") from None
        if not response.is_success:
            transient = response.status_code == 429 or response.status_code >= 500
            reason = f"HTTP {response.status_code} {response.text.strip()[:200]}".strip()
            raise TransportError(reason, permanent=not transient)

    async def _telegram(self, chat_id: int, text: str) -> None:
        if self._tg is None:
            raise TransportError("BOT_TOKEN is not set", permanent=True)
        if len(text) > TELEGRAM_MAX:
            raise TransportError(f"message of {len(text)} characters is too long", permanent=True)
        body = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        try:
            response = await self.http.post(self._tg, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"network error: {exc.__class__.__name__}"
            ) from None  # the URL holds the token
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("ok"):
            return
        answer = answer if isinstance(answer, dict) else {}
        code = int(answer.get("error_code", response.status_code))
        description = str(answer.get("description", ""))[:200]
        raise TransportError(f"{code} {description}".strip(), permanent=not (code == 429 or code >= 500))


@dataclass
class Attempted:
    out: Outgoing
    ok: bool
    attempts: int
    error: str | None = None


async def send_direct(
    courier: Courier, out: Outgoing, sleep: Callable[[float], Awaitable[None]], retries: int = 3
) -> Attempted:
    """Without the database (it is down): send now, retrying transient errors a few times."""
    for attempt in range(1, retries + 1):
        try:
            await courier.send(out.transport, out.target, out.text)
            return Attempted(out, True, attempt)
        except TransportError as exc:
            if exc.permanent or attempt == retries:
                return Attempted(out, False, attempt, exc.message)
            await sleep(2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def deliver_pending(
    db: Database, courier: Courier, clock: Clock, *, limit: int = 100
) -> list[tuple[int, bool]]:
    """Send every due notification row; returns (row id, delivered) for each one this call sent."""
    now = clock.now()
    async with db.sessions() as session:
        due = (
            await session.execute(
                select(
                    IncidentNotification.id, IncidentNotification.state, IncidentNotification.next_attempt_at
                )
                .where(
                    IncidentNotification.state.in_(("pending", "sending")),
                    IncidentNotification.next_attempt_at <= now,
                )
                .order_by(IncidentNotification.id)
                .limit(limit)
            )
        ).all()
    done: list[tuple[int, bool]] = []
    for row_id, state, next_at in due:
        row = await _claim(db, int(row_id), str(state), next_at, now)
        if row is not None:
            done.append((row.id, await _send(db, courier, row, clock.now())))
    return done


async def _claim(
    db: Database, row_id: int, state: str, next_at: datetime, now: datetime
) -> IncidentNotification | None:
    async with db.write() as session:
        claimed = await session.execute(
            update(IncidentNotification)
            .where(
                IncidentNotification.id == row_id,
                IncidentNotification.state == state,
                IncidentNotification.next_attempt_at == next_at,
            )
            .values(state="sending", next_attempt_at=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None  # another instance has it
        return await session.get(IncidentNotification, row_id)


async def _send(db: Database, courier: Courier, row: IncidentNotification, now: datetime) -> bool:
    attempts = row.attempts + 1
    try:
        await courier.send(row.transport, row.target, row.text)
    except TransportError as exc:
        final = exc.permanent or attempts >= MAX_ATTEMPTS
        log.warning(
            "incident message %s via %s failed (%s): %s", row.key, row.transport, attempts, exc.message
        )
        values = {
            "state": "failed" if final else "pending",
            "attempts": attempts,
            "last_error": ("permanent: " if exc.permanent else "") + exc.message,
            "next_attempt_at": now + RETRY_BASE * 2 ** (attempts - 1),
        }
        await _finish(db, row.id, values)
        return False
    await _finish(db, row.id, {"state": "sent", "attempts": attempts, "last_error": None, "sent_at": now})
    async with db.write() as session:
        first = await session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == row.incident_id, IncidentRow.notified_at.is_(None))
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(first, "rowcount", 0) == 1:
            text = f"Team notified: {row.kind} message delivered via {row.transport}"
            await add_events(session, row.incident_id, [Event(now, "notified", "system", text)])
    return True


async def _finish(db: Database, row_id: int, values: dict[str, object]) -> None:
    async with db.write() as session:
        await session.execute(
            update(IncidentNotification)
            .where(IncidentNotification.id == row_id, IncidentNotification.state == "sending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def close_quietly(http: httpx.AsyncClient) -> None:
    try:
        await asyncio.wait_for(http.aclose(), 5)
    except Exception as exc:  # closing must never hide the real outcome
        log.debug("closing the incident HTTP client: %s", exc.__class__.__name__)
