"""What a change writes inside its transaction: timeline entries, the notification rows its notices ask
for (rendered once, with the impact figures at that moment), and the audit entry of an operator's action."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from subbot.ops.incidents import rows
from subbot.ops.incidents.delivery import outgoing
from subbot.ops.incidents.impact import Impact, measure
from subbot.ops.incidents.model import Change, State
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.templates import render
from subbot.store.models import AuditEntry

ACTIONS = ("detected", "opened", "paged", "finding")  # timeline kinds listed as "Actions taken"


async def impact_of(session: AsyncSession, state: State, now: datetime) -> Impact:
    return await measure(session, state.detected_at, state.resolved_at or now, now)


async def record(
    session: AsyncSession, state: State, change: Change, policy: IncidentPolicy, now: datetime
) -> None:
    assert state.id is not None
    await rows.add_events(session, state.id, change.events)
    if not change.notices:
        return
    impact = await impact_of(session, state, now)
    actions = [e.text for e in change.events if e.kind in ACTIONS]
    for notice in change.notices:
        rendered = render(notice, state, policy, now, impact=impact, actions=actions)
        await rows.add_notifications(session, state.id, outgoing(notice, rendered, policy), now)


def audit(
    session: AsyncSession, now: datetime, actor: str, action: str, state: State, details: Mapping[str, object]
) -> None:
    entry = {"incident_id": state.id, **{k: v for k, v in details.items() if v is not None}}
    session.add(AuditEntry(at=now, actor=actor[:128], action=action, target_user_id=None, details=entry))
