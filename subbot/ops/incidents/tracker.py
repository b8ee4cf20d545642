"""The monitor's side of incidents: every pass feeds the checks into the monitor's incident.

With the database up, the incident lives in the database (``Incidents.observe`` and ``sweep``). When the
database is the thing that is down, the incident is followed in this process's memory with the same
lifecycle: messages go out directly (nothing can be queued), escalation and reminders still run, and the
whole timeline with every message sent is written to the database as soon as it is back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from subbot.config import Settings
from subbot.domain.clock import Clock, ensure_utc
from subbot.ops.alerts import Delivery, Notifier
from subbot.ops.incidents import lifecycle, rows
from subbot.ops.incidents.delivery import Attempted, Courier, outgoing, send_direct
from subbot.ops.incidents.lifecycle import Finding, Observation
from subbot.ops.incidents.model import Event, State
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.service import Incidents
from subbot.ops.incidents.templates import render
from subbot.ops.monitoring.base import CheckResult, Severity, Status
from subbot.store.db import Database
from subbot.store.models import AlertState

log = logging.getLogger(__name__)
DB_TIMEOUT = 15.0  # an unreachable database must not hold the monitor
CONFIRMING = ("alert", "escalated", "repeat")  # alert kinds that mean "failing for N checks in a row"


def shared_with_incidents(settings: Settings) -> set[str]:
    """Alert channels that are also the incident status channels (INCIDENT_* unset or the same)."""
    shared = set()
    incident_slack = settings.incident_slack_webhook_url
    if incident_slack is None or incident_slack == settings.alert_webhook_url:
        shared.add("slack")
    if settings.incident_telegram_chat_id in (None, settings.alert_telegram_chat_id):
        shared.add("telegram")
    return shared


class QuietNotifier(Notifier):
    """No warning when every alert channel is the incidents' status channel: nothing is lost there."""

    async def send(self, component: str, severity: str, text: str) -> list[Delivery]:
        return await super().send(component, severity, text) if self.transports else []


@dataclass
class Offline:
    """The monitor's incident while the database is unavailable."""

    state: State
    events: list[Event] = field(default_factory=list)
    sent: list[tuple[datetime, Attempted]] = field(default_factory=list)


def observation(
    results: list[CheckResult], confirmed: set[str], since: Mapping[str, datetime]
) -> Observation:
    obs = Observation()
    for r in results:
        if r.status is Status.OK:
            obs.healthy.add(r.component)
        elif r.failing:
            severity = (r.severity or Severity.SEV3).value
            finding = Finding(
                r.component, severity, r.status is Status.CRITICAL, r.summary, since.get(r.component)
            )
            obs.failing[r.component] = finding
            if r.component in confirmed:
                obs.confirmed[r.component] = finding
    return obs


class IncidentTracker:
    def __init__(
        self,
        policy: IncidentPolicy,
        courier: Courier,
        clock: Clock,
        host: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy, self.courier, self.clock, self.sleep = policy, courier, clock, sleep
        self.actor = f"monitor:{host}"
        self.offline: Offline | None = None

    async def observe(
        self,
        results: list[CheckResult],
        alerted: set[str],
        db: Database | None,
        since: Mapping[str, datetime],
    ) -> None:
        """One monitor pass. ``alerted``: components the alert policy alerted on in this pass."""
        if db is not None:
            try:
                await asyncio.wait_for(self._with_db(db, results, alerted, since), DB_TIMEOUT)
                return
            except (OSError, TimeoutError, SQLAlchemyError) as exc:
                log.warning("incidents: database unusable (%s); following in memory", exc.__class__.__name__)
        await self._offline(observation(results, alerted, since))

    async def _with_db(
        self, db: Database, results: list[CheckResult], alerted: set[str], since: Mapping[str, datetime]
    ) -> None:
        service = Incidents(db, self.clock, self.policy, self.courier)
        if self.offline is not None:
            await adopt(db, self.offline, self.clock.now(), self.actor)
            self.offline = None
        known = dict(since)
        missing = [c for c in alerted if c not in known]
        if missing:  # the alert state in the database knows when these started failing
            async with db.sessions() as session:
                found = await session.execute(
                    select(AlertState.component, AlertState.since).where(AlertState.component.in_(missing))
                )
                known.update({str(c): ensure_utc(s) for c, s in found.all()})
        await service.observe(observation(results, alerted, known), self.actor)
        await service.sweep()

    async def _offline(self, obs: Observation) -> None:
        now = self.clock.now()
        current = self.offline.state if self.offline else None
        state, change = lifecycle.observe(current, obs, now, self.policy, self.actor)
        if state is None:
            return
        if self.offline is None:
            self.offline = Offline(state)
            log.error(
                "incident opened while the database is unavailable: %s (%s)", state.title, state.severity
            )
        change.extend(lifecycle.tick(state, now, self.policy, self.actor))
        self.offline.events += change.events
        actions = [e.text for e in change.events if e.kind in ("detected", "opened", "paged", "finding")]
        for notice in change.notices:
            rendered = render(notice, state, self.policy, now, impact=None, actions=actions)
            for out in outgoing(notice, rendered, self.policy):
                attempt = await send_direct(self.courier, out, self.sleep)
                self.offline.sent.append((self.clock.now(), attempt))
                if attempt.ok and state.notified_at is None:
                    state.notified_at = self.clock.now()
                    text = f"Team notified: {out.kind} message delivered via {out.transport}"
                    self.offline.events.append(Event(state.notified_at, "notified", "system", text))


async def adopt(db: Database, offline: Offline, now: datetime, actor: str) -> State:
    """Write the incident followed in memory; merge it into the monitor's open incident if one exists
    (another monitor may have written its own first)."""
    tag = uuid.uuid4().hex[:10]
    for _ in range(3):
        try:
            async with db.write() as session:
                current = await rows.monitor_open(session) if offline.state.is_open else None
                events = list(offline.events)
                if current is None:
                    offline.state.id = None
                    target = await rows.insert(session, offline.state, now)
                else:
                    target = current
                    note = f"Timeline kept in memory by {actor} while the database was unavailable"
                    events.append(Event(now, "merged", actor, note))
                assert target.id is not None
                await rows.add_events(session, target.id, events)
                for n, (at, attempt) in enumerate(offline.sent):
                    out = attempt.out
                    record = rows.Outgoing(
                        f"offline:{tag}:{n}:{out.key}",
                        out.kind,
                        out.level,
                        out.transport,
                        out.target,
                        out.text,
                    )
                    await rows.add_notifications(
                        session,
                        target.id,
                        [record],
                        at,
                        state="sent" if attempt.ok else "failed",
                        attempts=attempt.attempts,
                        error=attempt.error,
                    )
            log.warning("incident #%s written to the database after the outage", target.id)
            return target
        except IntegrityError:
            continue  # another monitor inserted the open incident at the same moment: merge into it
    raise RuntimeError("could not write the incident followed in memory")
