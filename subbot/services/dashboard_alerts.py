"""The Settings page's read side: what the monitor last saw per component, and every alert attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from subbot.domain.clock import ensure_utc
from subbot.services.dashboard_common import ListPage, paging
from subbot.store.db import Database
from subbot.store.models import AlertAttempt, AlertState

MESSAGE_CHARS = 500  # an alert text can be long; the table shows its start


@dataclass(frozen=True)
class ComponentState:
    component: str
    status: str  # ok | degraded | critical
    severity: str | None
    failures: int
    since: datetime
    last_check_at: datetime
    last_alert_at: datetime | None
    summary: str


@dataclass(frozen=True)
class AttemptRow:
    id: int
    at: datetime
    transport: str
    component: str
    severity: str
    ok: bool
    message: str
    error: str | None


AttemptPage = ListPage[AttemptRow]


async def component_states(db: Database) -> list[ComponentState]:
    """The ``alert_states`` rows (written by every monitor pass that alerts), by component."""
    async with db.sessions() as session:
        rows = (await session.scalars(select(AlertState).order_by(AlertState.component))).all()
    out = []
    for r in rows:
        summary = r.details.get("summary") if isinstance(r.details, dict) else None
        out.append(
            ComponentState(
                r.component,
                r.status,
                r.severity,
                r.consecutive_failures,
                ensure_utc(r.since),
                ensure_utc(r.last_check_at),
                ensure_utc(r.last_alert_at) if r.last_alert_at else None,
                summary if isinstance(summary, str) else "",
            )
        )
    return out


async def alert_attempts(db: Database, *, page: int = 1, per_page: int = 25) -> AttemptPage:
    """Notification attempts, newest first, delivered or not."""
    paged = paging(page, per_page)
    stmt = select(AlertAttempt).order_by(AlertAttempt.at.desc(), AlertAttempt.id.desc())
    async with db.sessions() as session:
        found = (await session.scalars(stmt.offset(paged.offset).limit(paged.per_page))).all()
        total = int(await session.scalar(select(func.count()).select_from(AlertAttempt)) or 0)
    rows = [
        AttemptRow(
            a.id,
            ensure_utc(a.at),
            a.transport,
            a.component,
            a.severity,
            a.ok,
            a.message[:MESSAGE_CHARS] + ("…" if len(a.message) > MESSAGE_CHARS else ""),
            a.error,
        )
        for a in found
    ]
    return AttemptPage(rows, total, paged.page, paged.per_page)
