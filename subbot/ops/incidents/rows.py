"""Incidents in the database: rows ↔ :class:`State`, saves guarded by the row's version, timeline and
notification rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.ops.incidents.model import MONITOR_KEY, Event, State
from subbot.store.models import IncidentEvent, IncidentNotification, IncidentRow
from subbot.store.sql import insert_ignore

# The columns a lifecycle change may set. ``notified_at`` is not among them: delivery sets it on its own
# (conditional UPDATE), and a change decided on an older read must not put it back to NULL.
_CHANGED = (
    "title",
    "severity",
    "status",
    "components",
    "acknowledged_at",
    "acknowledged_by",
    "recovered_at",
    "resolved_at",
    "escalation_level",
    "last_update_at",
    "next_update_at",
    "reminded_for",
    "root_cause",
    "fix",
    "maintenance",
)


@dataclass(frozen=True)
class Outgoing:
    """A notification row to write: one message to one channel."""

    key: str
    kind: str
    level: int | None
    transport: str  # slack | telegram
    target: str  # "status" or a Telegram chat id
    text: str


def to_state(row: IncidentRow) -> State:
    return State(
        id=row.id,
        title=row.title,
        severity=row.severity,
        status=row.status,
        components=[str(c) for c in (row.components or [])],
        source=row.source,
        detected_at=row.detected_at,
        last_update_at=row.last_update_at,
        created_by=row.created_by,
        notified_at=row.notified_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        recovered_at=row.recovered_at,
        resolved_at=row.resolved_at,
        escalation_level=row.escalation_level,
        next_update_at=row.next_update_at,
        reminded_for=row.reminded_for,
        root_cause=row.root_cause,
        fix=row.fix,
        maintenance=row.maintenance,
        version=row.version,
    )


def _open_key(state: State) -> str | None:
    return MONITOR_KEY if state.source == "monitor" and state.is_open else None


def _values(state: State) -> dict[str, Any]:
    values = {name: getattr(state, name) for name in _CHANGED}
    values["components"] = list(state.components)
    values["open_key"] = _open_key(state)
    return values


async def insert(session: AsyncSession, state: State, now: datetime) -> State:
    """Add the incident; its id and version are set on ``state``. The monitor's open incident is unique."""
    row = IncidentRow(
        **_values(state),
        source=state.source,
        detected_at=state.detected_at,
        notified_at=state.notified_at,
        created_by=state.created_by,
        version=1,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    state.id, state.version = row.id, 1
    return state


async def save(session: AsyncSession, state: State, now: datetime) -> bool:
    """Write ``state`` if nobody changed the row since it was read; True when written."""
    assert state.id is not None
    stmt = (
        update(IncidentRow)
        .where(IncidentRow.id == state.id, IncidentRow.version == state.version)
        .values(**_values(state), version=state.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    won = getattr(await session.execute(stmt), "rowcount", 0) == 1
    if won:
        state.version += 1
    return won


async def get(session: AsyncSession, incident_id: int) -> State | None:
    row = await session.get(IncidentRow, incident_id, populate_existing=True)
    return to_state(row) if row is not None else None


async def monitor_open(session: AsyncSession) -> State | None:
    row = await session.scalar(select(IncidentRow).where(IncidentRow.open_key == MONITOR_KEY))
    return to_state(row) if row is not None else None


async def listing(session: AsyncSession, *, open_only: bool, limit: int) -> list[State]:
    stmt = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(limit)
    if open_only:
        stmt = stmt.where(IncidentRow.status != "resolved")
    return [to_state(r) for r in (await session.scalars(stmt)).all()]


async def add_events(session: AsyncSession, incident_id: int, events: list[Event]) -> None:
    for e in events:
        session.add(
            IncidentEvent(
                incident_id=incident_id,
                at=e.at,
                kind=e.kind,
                actor=e.actor[:128],
                text=e.text,
                details=dict(e.details),
            )
        )
    await session.flush()


async def add_notifications(
    session: AsyncSession,
    incident_id: int,
    rows: list[Outgoing],
    now: datetime,
    *,
    state: str = "pending",
    attempts: int = 0,
    error: str | None = None,
) -> int:
    """Insert notification rows (``state`` 'sent'/'failed' records messages already sent); the unique
    key drops a row another instance already wrote. Returns how many were inserted."""
    added = 0
    table: Any = IncidentNotification.__table__
    for out in rows:
        values = {
            "incident_id": incident_id,
            "key": f"{incident_id}:{out.key}:{out.transport}:{out.target}"[:191],
            "kind": out.kind,
            "level": out.level,
            "transport": out.transport,
            "target": out.target,
            "text": out.text,
            "state": state,
            "attempts": attempts,
            "last_error": error,
            "created_at": now,
            "next_attempt_at": now,
            "sent_at": now if state == "sent" else None,
        }
        added += int(await insert_ignore(session, table, values, ["key"]))
    return added


async def timeline(session: AsyncSession, incident_id: int) -> list[IncidentEvent]:
    rows = await session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.at, IncidentEvent.id)
    )
    return list(rows.all())


async def notifications(session: AsyncSession, incident_id: int) -> list[IncidentNotification]:
    rows = await session.scalars(
        select(IncidentNotification)
        .where(IncidentNotification.incident_id == incident_id)
        .order_by(IncidentNotification.id)
    )
    return list(rows.all())
