"""Incident use cases: list, show, open, update, acknowledge, resolve, review, the monitor's step, the sweep.

Each change is one transaction: the incident row (guarded by its version, so two instances never both
apply a change), its timeline entries, the notification rows it asks for and, for operators' actions, an
audit entry. Messages are delivered after the commit (``deliver``) and again by the sweep if that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.config import Settings
from subbot.domain.clock import Clock
from subbot.ops import maintenance as maintenance_flag
from subbot.ops.incidents import lifecycle, rows
from subbot.ops.incidents.delivery import Courier, close_quietly, deliver_pending
from subbot.ops.incidents.impact import Impact
from subbot.ops.incidents.lifecycle import Observation
from subbot.ops.incidents.model import (
    Change,
    Event,
    IncidentError,
    State,
    clean_actor,
    clean_components,
    clean_severity,
    clean_status,
    clean_text,
    clean_title,
    parse_id,
)
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.recording import audit as write_audit
from subbot.ops.incidents.recording import impact_of, record
from subbot.ops.incidents.review import render_review
from subbot.store.db import Database
from subbot.store.models import IncidentEvent, IncidentNotification

log = logging.getLogger(__name__)
SWEEP_SECONDS = 30.0  # how often `subbot run` escalates, reminds and retries messages
ATTEMPTS = 5  # re-reads when another instance changed the incident between our read and our write
Step = Callable[[State, datetime], Change]


class _Lost(Exception):
    """The row changed under us: roll back and decide again on what is there now."""


@dataclass
class Detail:
    incident: State
    events: list[IncidentEvent]
    notifications: list[IncidentNotification]
    impact: Impact


class Incidents:
    def __init__(
        self, db: Database, clock: Clock, policy: IncidentPolicy, courier: Courier | None = None
    ) -> None:
        self.db, self.clock, self.policy, self.courier = db, clock, policy, courier
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, clock: Clock) -> Incidents:
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        service = cls(
            db, clock, IncidentPolicy.from_settings(settings), Courier.from_settings(settings, http)
        )
        service._http = http
        return service

    async def aclose(self) -> None:
        if self._http is not None:
            await close_quietly(self._http)

    # ------------------------------------------------------------------------------------------ reading
    async def list_incidents(self, *, open_only: bool = False, limit: int = 50) -> list[State]:
        async with self.db.sessions() as session:
            return await rows.listing(session, open_only=open_only, limit=max(1, min(limit, 500)))

    async def get(self, raw_id: str | int) -> Detail:
        incident_id = parse_id(raw_id)
        async with self.db.sessions() as session:
            state = await self._require(session, incident_id)
            return Detail(
                state,
                await rows.timeline(session, incident_id),
                await rows.notifications(session, incident_id),
                await impact_of(session, state, self.clock.now()),
            )

    async def review(self, raw_id: str | int, *, force: bool = False) -> str:
        """The post-incident review as Markdown (SEV-1 and SEV-2, once resolved, unless ``force``)."""
        detail = await self.get(raw_id)
        state = detail.incident
        if not force and state.severity == "SEV-3":
            raise IncidentError(
                f"incident {state.label} is SEV-3: the runbook requires reviews for SEV-1 and SEV-2"
            )
        if not force and state.is_open:
            raise IncidentError(f"incident {state.label} is not resolved yet (use --force for a draft)")
        return render_review(
            detail.incident, detail.events, detail.notifications, detail.impact, self.policy, self.clock.now()
        )

    # ------------------------------------------------------------------------------------------ operators
    async def open(
        self,
        title: str,
        severity: str,
        *,
        actor: str,
        components: list[str] | None = None,
        summary: str | None = None,
    ) -> State:
        clean = clean_title(title)
        sev = clean_severity(severity)
        parts = clean_components(components or [])
        text = clean_text(summary, "summary", required=False)
        who = clean_actor(actor)
        now = self.clock.now()
        state, change = lifecycle.open_incident(
            title=clean,
            severity=sev,
            components=parts,
            source="manual",
            actor=who,
            now=now,
            policy=self.policy,
            summary=text,
        )
        async with self.db.write() as session:
            await rows.insert(session, state, now)
            await record(session, state, change, self.policy, now)
            write_audit(session, now, who, "incident_open", state, {"title": clean, "severity": sev})
        await self.deliver()
        return state

    async def update(
        self,
        raw_id: str | int,
        *,
        actor: str,
        text: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        next_steps: list[str] | None = None,
    ) -> State:
        note = clean_text(text, "update text", required=False)
        new_status = clean_status(status) if status else None
        new_severity = clean_severity(severity) if severity else None
        steps = [s for s in (clean_text(x, "next step", 500, required=False) for x in next_steps or []) if s]
        who = clean_actor(actor)

        def step(state: State, now: datetime) -> Change:
            return lifecycle.update(
                state,
                actor=who,
                now=now,
                policy=self.policy,
                text=note,
                status=new_status,
                severity=new_severity,
                next_steps=steps,
            )

        details = {"text": note, "status": new_status, "severity": new_severity}
        return await self._manual(raw_id, who, "incident_update", step, details)

    async def acknowledge(self, raw_id: str | int, *, actor: str) -> State:
        who = clean_actor(actor)
        return await self._manual(
            raw_id, who, "incident_ack", lambda s, now: lifecycle.acknowledge(s, actor=who, now=now), {}
        )

    async def resolve(
        self,
        raw_id: str | int,
        *,
        actor: str,
        fix: str | None = None,
        root_cause: str | None = None,
        follow_ups: list[str] | None = None,
    ) -> State:
        what = clean_text(fix, "fix", required=False)
        why = clean_text(root_cause, "root cause", required=False)
        todo = [f for f in (clean_text(x, "follow-up", 500, required=False) for x in follow_ups or []) if f]
        who = clean_actor(actor)

        def step(state: State, now: datetime) -> Change:
            return lifecycle.resolve(state, actor=who, now=now, fix=what, root_cause=why, follow_ups=todo)

        state = await self._manual(raw_id, who, "incident_resolve", step, {"fix": what, "root_cause": why})
        return await self._end_maintenance(state, who)

    async def maintenance(
        self, raw_id: str | int, *, on: bool, actor: str, message: str | None = None
    ) -> State:
        """Members get the maintenance message (``subbot maintenance``'s flag) while the incident lasts;
        resolving the incident switches it off again."""
        who = clean_actor(actor)
        incident_id = parse_id(raw_id)
        async with self.db.sessions() as session:
            state = await self._require(session, incident_id)
        if on and not state.is_open:
            raise IncidentError(
                f"incident {state.label} is resolved: maintenance mode is not switched on for it"
            )
        try:
            flag = await maintenance_flag.write_flag(
                self.db, enabled=on, message=message, actor=who, now=self.clock.now()
            )
        except ValueError as exc:
            raise IncidentError(str(exc)) from None
        told = f"on: members are told “{flag.message}”" if flag.message else "on (the default message)"
        text = f"Maintenance mode {told if on else 'off'}"

        def step(s: State, now: datetime) -> Change:
            s.maintenance = on
            return Change([Event(now, "maintenance", who, text)])

        return await self._change(incident_id, step)

    async def _end_maintenance(self, state: State, actor: str) -> State:
        if state.maintenance and not state.is_open and state.id is not None:
            return await self.maintenance(state.id, on=False, actor=actor)
        return state

    async def _manual(
        self, raw_id: str | int, actor: str, action: str, step: Step, details: Mapping[str, object]
    ) -> State:
        incident_id = parse_id(raw_id)
        state = await self._change(incident_id, step, audit=(actor, action, details))
        await self.deliver()
        return state

    # ------------------------------------------------------------------------------------------ automation
    async def observe(self, obs: Observation, actor: str) -> State | None:
        """The monitor's step on its own incident (opens one when a check is confirmed failing)."""
        for _ in range(ATTEMPTS):
            now = self.clock.now()
            try:
                async with self.db.write() as session:
                    current = await rows.monitor_open(session)
                    state, change = lifecycle.observe(current, obs, now, self.policy, actor)
                    if state is None or not change:
                        return state
                    if current is None:
                        await rows.insert(session, state, now)
                    elif not await rows.save(session, state, now):
                        raise _Lost
                    await record(session, state, change, self.policy, now)
                return await self._end_maintenance(state, actor)
            except (_Lost, IntegrityError):  # IntegrityError: another monitor opened it this instant
                continue
        log.warning("the monitor's incident kept changing under us; this observation was skipped")
        return None

    async def sweep(self) -> int:
        """Escalate, remind, and deliver what is pending; safe to run on every instance at once."""

        def step(state: State, now: datetime) -> Change:
            return lifecycle.tick(state, now, self.policy, "system")

        async with self.db.sessions() as session:  # read first: most sweeps have nothing to write
            due = sorted(
                s.id
                for s in await rows.listing(session, open_only=True, limit=500)
                if s.id is not None and step(replace(s, components=list(s.components)), self.clock.now())
            )
        for incident_id in due:
            await self._change(incident_id, step, quiet=True)
        return len(await self.deliver())

    async def deliver(self) -> list[tuple[int, bool]]:
        if self.courier is None:
            return []
        return await deliver_pending(self.db, self.courier, self.clock)

    # ------------------------------------------------------------------------------------------ internals
    async def _change(
        self,
        incident_id: int,
        step: Step,
        *,
        audit: tuple[str, str, Mapping[str, object]] | None = None,
        quiet: bool = False,
    ) -> State:
        last: State | None = None
        for _ in range(ATTEMPTS):
            now = self.clock.now()
            try:
                async with self.db.write() as session:
                    last = state = await self._require(session, incident_id)
                    change = step(state, now)  # IncidentError here: nothing written
                    if not change:
                        return state
                    if not await rows.save(session, state, now):
                        raise _Lost
                    await record(session, state, change, self.policy, now)
                    if audit is not None:
                        write_audit(session, now, audit[0], audit[1], state, audit[2])
                return state
            except _Lost:
                continue
        if quiet and last is not None:
            return last
        raise IncidentError(f"incident #{incident_id} is being changed by someone else; try again")

    async def _require(self, session: AsyncSession, incident_id: int) -> State:
        state = await rows.get(session, incident_id)
        if state is None:
            raise IncidentError(f"no incident #{incident_id} (see `subbot incident list`)")
        return state
