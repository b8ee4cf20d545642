"""The post-incident review (runbook: required for SEV-1 and SEV-2) as Markdown, facts filled in from data.

Timeline with the gaps between entries, the key intervals against the runbook's targets, impact figures,
the notifications sent, and the root-cause, lessons and action-item sections for the team to fill in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from subbot.ops.incidents.impact import Impact
from subbot.ops.incidents.model import State, fmt_duration
from subbot.ops.incidents.policy import IncidentPolicy

TODO = "_To fill in._"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#&])")


class EventLike(Protocol):
    at: datetime
    kind: str
    actor: str
    text: str


class NotificationLike(Protocol):
    created_at: datetime
    sent_at: datetime | None
    kind: str
    level: int | None
    transport: str
    target: str
    state: str
    attempts: int
    last_error: str | None


def md(text: str) -> str:
    """Text shown literally in Markdown (and on one table row)."""
    return _MD_SPECIAL.sub(r"\\\1", " / ".join(line.strip() for line in text.splitlines() if line.strip()))


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _interval(label: str, start: datetime, end: datetime | None, target: timedelta | None = None) -> str:
    if end is None:
        return f"- {label}: not yet"
    took = end - start
    verdict = ""
    if target is not None:
        verdict = f" (target {fmt_duration(target)}: {'met' if took <= target else 'missed'})"
    return f"- {label}: {fmt_duration(took)}{verdict}"


def _timeline(state: State, events: Sequence[EventLike]) -> list[str]:
    out = ["| time (UTC) | since detection | gap | event | by |", "| --- | --- | --- | --- | --- |"]
    previous: datetime | None = None
    for e in sorted(events, key=lambda e: e.at):
        gap = "—" if previous is None else f"+{fmt_duration(e.at - previous)}"
        since = fmt_duration(e.at - state.detected_at) if e.at >= state.detected_at else "before"
        out.append(f"| {_at(e.at)} | {since} | {gap} | **{e.kind}**: {md(e.text)} | {md(e.actor)} |")
        previous = e.at
    return out


def _notifications(items: Sequence[NotificationLike]) -> list[str]:
    if not items:
        return ["No message was sent (no status channel configured)."]
    out = ["| created | sent | message | level | channel | result |", "| --- | --- | --- | --- | --- | --- |"]
    for n in items:
        sent = _at(n.sent_at) if n.sent_at else "—"
        channel = "Slack status channel" if n.transport == "slack" else f"Telegram {n.target}"
        result = n.state + (f" after {n.attempts} attempt(s)" if n.attempts > 1 else "")
        if n.last_error:
            result += f": {md(n.last_error)}"
        out.append(f"| {_at(n.created_at)} | {sent} | {n.kind} | {n.level or '—'} | {channel} | {result} |")
    return out


def render_review(
    state: State,
    events: Sequence[EventLike],
    notifications: Sequence[NotificationLike],
    impact: Impact,
    policy: IncidentPolicy,
    now: datetime,
) -> str:
    acked = state.acknowledged_at
    follow_ups = [e.text for e in events if e.kind == "follow_up"]
    escalations = [e.text for e in events if e.kind == "escalated"]
    end = f"{_at(state.resolved_at)} UTC" if state.resolved_at else "ongoing (draft review)"
    lines = [
        f"# Post-incident review: #{state.id} {md(state.title)}",
        "",
        f"- Severity: {state.severity}",
        f"- Status: {state.status}",
        f"- Components: {md(', '.join(state.components)) or 'not given'}",
        f"- Opened by: {md(state.created_by)} ({state.source})",
        f"- Window: {_at(state.detected_at)} UTC → {end}",
        f"- Duration: {fmt_duration(state.duration(now))}",
        f"- Written: {_at(now)} UTC",
        "",
        "## 1. Timeline",
        "",
        _interval("Detected → team notified", state.detected_at, state.notified_at),
        _interval("Detected → acknowledged", state.detected_at, acked, policy.cadence(state.severity)),
        _interval("Detected → checks recovered", state.detected_at, state.recovered_at),
        _interval("Detected → resolved", state.detected_at, state.resolved_at),
        f"- Acknowledged by: {md(state.acknowledged_by or 'nobody')}",
        f"- Escalations: {len(escalations)}" + (f" ({md('; '.join(escalations))})" if escalations else ""),
        "",
        *_timeline(state, events),
        "",
        "## 2. Root cause analysis",
        "",
        f"- What caused the issue? {md(state.root_cause) if state.root_cause else TODO}",
        f"- Why wasn't it caught earlier? {TODO}",
        f"- What monitoring gap existed? {TODO}",
        f"- Fix applied: {md(state.fix) if state.fix else TODO}",
        "",
        "## 3. Impact assessment",
        "",
        *(f"- {md(line)}" for line in impact.lines()),
        f"- Revenue impact: failed {md(impact.failed.money())}; delayed {md(impact.delayed.money())}",
        f"- Reputation impact: {TODO}",
        "",
        "## 4. Lessons learned",
        "",
        f"- What went well? {TODO}",
        f"- What could be improved? {TODO}",
        f"- Action items for prevention: {TODO}",
        "",
        "## 5. Action items",
        "",
        *(f"- [ ] {md(item)}" for item in follow_ups),
        "- [ ] Code fixes needed: " + TODO,
        "- [ ] Monitoring improvements: " + TODO,
        "- [ ] Process updates: " + TODO,
        "- [ ] Documentation updates: " + TODO,
        "",
        "## Notifications sent",
        "",
        *_notifications(notifications),
        "",
    ]
    return "\n".join(lines)
