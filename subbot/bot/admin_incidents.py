"""Incident commands for ADMIN_IDS: list, show, open, update, acknowledge, resolve (docs/incidents.md).

Thin: parse, call :class:`subbot.ops.incidents.service.Incidents` (which audits, records the timeline and
sends the status messages), answer in plain text so titles with odd characters are shown as typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiogram.filters import CommandObject
from aiogram.types import Message

from subbot.ops.incidents.model import OPEN_STATUSES, IncidentError, State, fmt_duration, fmt_time
from subbot.ops.incidents.service import Incidents
from subbot.telegram.gateway import TelegramGateway

COMMANDS = ("incidents", "incident", "iopen", "ack", "iupdate", "iresolve")
USAGE = {
    "incidents": "/incidents [all]",
    "incident": "/incident <id>",
    "iopen": "/iopen <SEV-1|SEV-2|SEV-3> <title>",
    "ack": "/ack <id>",
    "iupdate": f"/iupdate <id> [{'|'.join(OPEN_STATUSES)}] <what is happening>",
    "iresolve": "/iresolve <id> [fix applied]",
}
TIMELINE_SHOWN = 12


def line(state: State, now: datetime) -> str:
    ack = f"ack by {state.acknowledged_by}" if state.acknowledged_by else "NOT acknowledged"
    if not state.is_open:
        ack = f"resolved {fmt_time(state.resolved_at or now, now)}"
    return (
        f"#{state.id} {state.severity} {state.status} · {state.title} · "
        f"{fmt_duration(state.duration(now))} · {ack}"
    )


def actor_of(message: Message) -> str:
    assert message.from_user is not None
    user = message.from_user
    return f"telegram:{user.id}" + (f" @{user.username}" if user.username else "")


async def run_command(incidents: Incidents, name: str, args: str, actor: str, now: datetime) -> str:
    """The reply to one incident command; :class:`IncidentError` for bad input (nothing changed)."""
    first, _, rest = args.strip().partition(" ")
    rest = rest.strip()
    if name == "incidents":
        found = await incidents.list_incidents(open_only=first.lower() != "all", limit=20)
        if not found:
            return "No open incident. /incidents all lists the resolved ones too."
        head = "Incidents:" if first.lower() == "all" else "Open incidents:"
        return "\n".join([head, *(line(s, now) for s in found)])
    if not first:
        raise IncidentError(f"Usage: {USAGE[name]}")
    if name == "incident":
        detail = await incidents.get(first)
        s = detail.incident
        out = [
            line(s, now),
            f"Components: {', '.join(s.components) or '-'} · opened by {s.created_by}",
            f"Detected {fmt_time(s.detected_at, now)}"
            + (f" · next update due {fmt_time(s.next_update_at, now)}" if s.next_update_at else ""),
            f"Impact: {detail.impact.headline()}",
            "Timeline:",
        ]
        out += [f"{fmt_time(e.at, now)} {e.kind}: {e.text}" for e in detail.events[-TIMELINE_SHOWN:]]
        return "\n".join(out)
    if name == "iopen":
        if not rest:
            raise IncidentError(f"Usage: {USAGE[name]}")
        s = await incidents.open(rest, first, actor=actor)
        return f"Opened incident #{s.id} ({s.severity}): {s.title}. Status messages sent."
    if name == "ack":
        s = await incidents.acknowledge(first, actor=actor)
        return f"Acknowledged #{s.id}: escalation stopped."
    if name == "iupdate":
        status, _, text = rest.partition(" ")
        if status.lower() not in OPEN_STATUSES:
            status, text = "", rest
        s = await incidents.update(first, actor=actor, text=text.strip() or None, status=status or None)
        due = fmt_time(s.next_update_at or now, now)
        return f"Update posted for #{s.id} (status {s.status}; next update due {due})."
    if name == "iresolve":
        s = await incidents.resolve(first, actor=actor, fix=rest or None)
        return f"Resolved #{s.id} after {fmt_duration(s.duration(now))}. Resolution notice sent."
    raise IncidentError(f"Unknown command /{name}")


async def incident_command(
    message: Message, command: CommandObject, gateway: TelegramGateway, app: Any
) -> None:
    incidents: Incidents = app.incidents
    name = command.command.lower()
    try:
        reply = await run_command(incidents, name, command.args or "", actor_of(message), app.clock.now())
    except IncidentError as exc:
        reply = str(exc)
    await gateway.send_message(message.chat.id, reply[:4000], interactive=True)
