"""When to alert: on transitions only, after N consecutive failures, repeated while unresolved, resolved once.

The state of each component lives in ``alert_states`` and is changed with a conditional UPDATE (the row
must still hold what this instance read), so several monitors sharing a database send each alert once.
When the database itself is unavailable the state is kept in this process's memory instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from subbot.domain.clock import Clock, ensure_utc
from subbot.ops.alerts import Delivery, Notifier
from subbot.ops.monitoring.base import SEVERITY_RANK, CheckResult, Severity, Status
from subbot.store.db import Database
from subbot.store.models import AlertState
from subbot.store.sql import insert_ignore

log = logging.getLogger(__name__)
DB_TIMEOUT = 10.0  # an unreachable database must not hold alerts back
ICONS = {"SEV-1": "🔴", "SEV-2": "🟠", "SEV-3": "🟡"}


@dataclass(frozen=True)
class AlertPolicy:
    threshold: int = 3  # consecutive failed checks before the first alert
    repeat: timedelta = timedelta(minutes=15)  # while unresolved, remind at most this often


@dataclass(frozen=True)
class Snapshot:
    status: str
    severity: str | None
    failures: int
    since: datetime
    last_check_at: datetime
    last_alert_at: datetime | None

    @classmethod
    def fresh(cls, now: datetime) -> Snapshot:
        return cls("ok", None, 0, now, now, None)


@dataclass
class Sent:
    component: str
    kind: str  # alert | escalated | repeat | resolved
    severity: str
    text: str
    deliveries: list[Delivery]


def _sev(value: str | None) -> Severity | None:
    return Severity(value) if value else None


def decide(
    prev: Snapshot, result: CheckResult, now: datetime, policy: AlertPolicy
) -> tuple[str | None, Snapshot]:
    """(what to send, if anything; the next state). Pure: the same inputs always give the same answer."""
    kind: str | None = None
    if not result.failing:
        kind = "resolved" if prev.last_alert_at is not None else None
        since = prev.since if prev.status == "ok" else now
        return kind, Snapshot("ok", None, 0, since, now, None)
    failures = prev.failures + 1
    since = prev.since if prev.status != "ok" else now
    severity = result.severity.value if result.severity else Severity.SEV3.value
    alerted = prev.last_alert_at
    if alerted is None:
        if failures >= policy.threshold:
            kind, alerted = "alert", now
    else:
        if SEVERITY_RANK[_sev(severity)] > SEVERITY_RANK[_sev(prev.severity)]:
            kind, alerted = "escalated", now
        elif now - alerted >= policy.repeat:
            kind, alerted = "repeat", now
        if SEVERITY_RANK[_sev(prev.severity)] > SEVERITY_RANK[_sev(severity)]:
            severity = prev.severity or severity  # the incident keeps its worst level until resolved
    return kind, Snapshot(result.status.value, severity, failures, since, now, alerted)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render(kind: str, result: CheckResult, state: Snapshot, prev: Snapshot, now: datetime, host: str) -> str:
    """Plain text (sent without a parse mode), in the runbook's communication style."""
    if kind == "resolved":
        return (
            f"✅ RESOLVED: {result.component}\n"
            f"Duration: {_duration(now - prev.since)} (since {prev.since:%Y-%m-%d %H:%M} UTC)\n"
            f"Now: {result.summary}\n"
            f"Monitor: {host}"
        )
    severity = state.severity or "SEV-3"
    status = "CRITICAL" if result.status is Status.CRITICAL else "DEGRADED"
    head = {"alert": "INCIDENT", "escalated": "ESCALATED", "repeat": "STILL FAILING"}[kind]
    return (
        f"{ICONS.get(severity, '⚠️')} {head}: {result.component} {status}\n"
        f"Severity: {severity}\n"
        f"Problem: {result.summary}\n"
        f"Failing since {state.since:%Y-%m-%d %H:%M} UTC ({_duration(now - state.since)}, "
        f"{state.failures} consecutive checks)\n"
        f"Monitor: {host}"
    )


def _snapshot(row: AlertState) -> Snapshot:
    return Snapshot(
        row.status,
        row.severity,
        row.consecutive_failures,
        ensure_utc(row.since),
        ensure_utc(row.last_check_at),
        ensure_utc(row.last_alert_at) if row.last_alert_at is not None else None,
    )


class AlertManager:
    def __init__(
        self,
        db: Database | None,
        notifier: Notifier,
        clock: Clock,
        policy: AlertPolicy | None = None,
        host: str | None = None,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.clock = clock
        self.policy = policy or AlertPolicy()
        self.host = host or socket.gethostname()
        self.memory: dict[str, Snapshot] = {}  # components followed in memory while the database was down

    async def observe(self, results: list[CheckResult]) -> list[Sent]:
        sent: list[Sent] = []
        for result in results:
            if result.status is Status.UNKNOWN:
                continue  # not checked: neither a failure nor a recovery
            now = self.clock.now()
            step = await self._step(result, now)
            if step is None:
                continue
            kind, prev, state = step
            text = render(kind, result, state, prev, now, self.host)
            severity = "OK" if kind == "resolved" else (state.severity or "SEV-3")
            deliveries = await self.notifier.send(result.component, severity, text)
            sent.append(Sent(result.component, kind, severity, text, deliveries))
        return sent

    async def _step(self, result: CheckResult, now: datetime) -> tuple[str, Snapshot, Snapshot] | None:
        component = result.component
        if component not in self.memory and self.db is not None:
            try:
                return await asyncio.wait_for(self._step_db(result, now), DB_TIMEOUT)
            except Exception as exc:
                log.warning(
                    "alert state unavailable (%s): following %s in memory", exc.__class__.__name__, component
                )
        prev = self.memory.get(component, Snapshot.fresh(now))
        kind, state = decide(prev, result, now, self.policy)
        if state.status == "ok" and state.last_alert_at is None:
            self.memory.pop(component, None)  # healthy again: back to the shared state
        else:
            self.memory[component] = state
        return (kind, prev, state) if kind else None

    async def _step_db(self, result: CheckResult, now: datetime) -> tuple[str, Snapshot, Snapshot] | None:
        assert self.db is not None
        component = result.component
        for _ in range(10):
            async with self.db.sessions() as session:
                row = await session.get(AlertState, component)
                prev = _snapshot(row) if row is not None else None
            if prev is None:
                fresh = Snapshot.fresh(now)
                async with self.db.write() as session:
                    table: Any = AlertState.__table__
                    await insert_ignore(session, table, _values(component, fresh, {}), ["component"])
                continue
            kind, state = decide(prev, result, now, self.policy)
            details: dict[str, Any] = {"summary": result.summary[:500]}
            stmt = (
                update(AlertState)
                .where(
                    AlertState.component == component,
                    AlertState.status == prev.status,
                    AlertState.consecutive_failures == prev.failures,
                    AlertState.last_check_at == prev.last_check_at,
                    AlertState.last_alert_at.is_(None)
                    if prev.last_alert_at is None
                    else AlertState.last_alert_at == prev.last_alert_at,
                )
                .values(**_values(component, state, details))
                .execution_options(synchronize_session=False)
            )
            async with self.db.write() as session:
                won = getattr(await session.execute(stmt), "rowcount", 0) == 1
            if won:
                return (kind, prev, state) if kind else None
            # Another monitor changed the row since we read it: read again and decide on its state.
        log.warning("alert state of %s kept changing under us; skipped this observation", component)
        return None


def _values(component: str, state: Snapshot, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "component": component,
        "status": state.status,
        "severity": state.severity,
        "consecutive_failures": state.failures,
        "since": state.since,
        "last_check_at": state.last_check_at,
        "last_alert_at": state.last_alert_at,
        "details": details,
    }
