"""How an incident moves: investigating → identified → monitoring → resolved, escalation and update reminders.

Pure functions on :class:`State`: the same inputs always give the same change, so the database path and the
in-memory path (database down) behave identically, and several monitors deciding on one row agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from subbot.ops.incidents.model import (
    SEVERITY_RANK,
    Change,
    Event,
    IncidentError,
    Notice,
    State,
    fmt_duration,
    fmt_time,
    worse,
)
from subbot.ops.incidents.policy import IncidentPolicy

# The runbook's failure scenarios, by check: (critical, degraded).
TITLES = {
    "database": ("Database completely inaccessible", "Database performance issues"),
    "bot": ("Bot unresponsive", "Bot responding slowly"),
    "payment": ("Payment processing failing", "Intermittent payment failures"),
    "webhook": ("Webhook endpoint failing", "Webhook endpoint degraded"),
    "admin": ("Bot lost its admin rights", "Bot lacks some admin rights"),
    "dashboard": ("Admin dashboard inaccessible", "Admin dashboard degraded"),
    "automation": ("Subscription automation failing", "Subscription automation delayed"),
    "resources": ("Memory/CPU exhausted", "High memory/CPU usage"),
}


@dataclass(frozen=True)
class Finding:
    component: str
    severity: str
    critical: bool
    summary: str
    since: datetime | None = None  # when the check started failing (the alert state knows)


@dataclass
class Observation:
    """One monitor pass: what the alert policy confirmed, what fails, what is healthy."""

    confirmed: dict[str, Finding] = field(default_factory=dict)
    failing: dict[str, Finding] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)


def title_for(finding: Finding) -> str:
    pair = TITLES.get(finding.component)
    if pair is None:
        return f"{finding.component} {'critical' if finding.critical else 'degraded'}"
    return pair[0] if finding.critical else pair[1]


def _refuse_if_resolved(state: State, what: str) -> None:
    if not state.is_open:
        assert state.resolved_at is not None
        raise IncidentError(
            f"incident {state.label} was resolved at {fmt_time(state.resolved_at)}: it cannot be {what}; "
            "open a new incident if the problem is back"
        )


def open_incident(
    *,
    title: str,
    severity: str,
    components: list[str],
    source: str,
    actor: str,
    now: datetime,
    policy: IncidentPolicy,
    detected_at: datetime | None = None,
    summary: str | None = None,
) -> tuple[State, Change]:
    detected = min(detected_at or now, now)
    state = State(
        title=title,
        severity=severity,
        status="investigating",
        components=list(components),
        source=source,
        detected_at=detected,
        last_update_at=now,
        created_by=actor,
        next_update_at=now + policy.cadence(severity),
    )
    change = Change()
    change.events.append(Event(detected, "detected", actor, summary or title))
    change.events.append(Event(now, "opened", actor, f"Incident opened ({severity}): {title}"))
    level = policy.level(1)
    if level is not None:
        change.events.append(Event(now, "paged", actor, f"Paged level 1: {level.name}", {"level": 1}))
    change.notices.append(Notice("initial", "initial", level=1 if level else None, notes=[summary or title]))
    return state, change


def observe(
    state: State | None, obs: Observation, now: datetime, policy: IncidentPolicy, actor: str
) -> tuple[State | None, Change]:
    """The monitor's step for its own incident (``state`` None when none is open)."""
    if state is None:
        if not obs.confirmed or not policy.auto_open:
            return None, Change()
        ordered = sorted(obs.confirmed.values(), key=lambda f: (-SEVERITY_RANK[f.severity], f.component))
        first = ordered[0]
        since = [f.since for f in ordered if f.since is not None]
        summary = "; ".join(f"{f.component}: {f.summary}" for f in ordered)
        return open_incident(
            title=title_for(first),
            severity=first.severity,
            components=[f.component for f in ordered],
            source="monitor",
            actor=actor,
            now=now,
            policy=policy,
            detected_at=min(since) if since else now,
            summary=f"Detected by the monitor: {summary}",
        )
    if not state.is_open:
        return state, Change()
    change = Change()
    notes: list[str] = []
    for finding in sorted(obs.confirmed.values(), key=lambda f: f.component):
        if finding.component in state.components:
            continue
        state.components.append(finding.component)
        line = f"Also affected: {finding.component} ({finding.severity}): {finding.summary}"
        change.events.append(Event(now, "finding", actor, line, {"component": finding.component}))
        notes.append(line)
    worst = max((f.severity for f in obs.confirmed.values()), key=SEVERITY_RANK.__getitem__, default=None)
    if worst is not None and worse(worst, state.severity) != state.severity:
        line = f"Severity raised from {state.severity} to {worst}"
        change.events.append(Event(now, "severity", actor, line, {"from": state.severity, "to": worst}))
        state.severity = worst
        notes.append(line)
    # recovered_at marks "the checks passed since they last failed": transitions only, so an operator's
    # own status stands until the checks change, and a flapping check moves the same incident back and forth.
    again = [c for c in state.components if c in obs.failing]
    all_ok = all(c in obs.healthy for c in state.components)
    if again and state.recovered_at is not None:
        line = "Failing again: " + "; ".join(f"{c}: {obs.failing[c].summary}" for c in again)
        change.events.append(Event(now, "failing", actor, line))
        state.recovered_at = None
        state.status = "investigating" if state.status == "monitoring" else state.status
        notes.append(line)
    elif all_ok and state.recovered_at is None:
        line = f"All affected checks pass again ({', '.join(state.components)}); monitoring"
        change.events.append(Event(now, "recovered", actor, line))
        state.status, state.recovered_at = "monitoring", now
        notes.append(line)
    elif all_ok and state.status == "monitoring" and state.recovered_at is not None:
        if policy.resolve_after is not None and now - state.recovered_at >= policy.resolve_after:
            quiet = fmt_duration(now - state.recovered_at)
            fix = f"none recorded: the checks recovered at {fmt_time(state.recovered_at)} and stayed healthy"
            change.extend(resolve(state, actor=actor, now=now, fix=state.fix or fix))
            change.events[-1].text += f" (checks healthy for {quiet})"
            return state, change
    if notes:
        change.extend(_communicated(state, now, policy, notes, []))
    return state, change


def _communicated(
    state: State, now: datetime, policy: IncidentPolicy, notes: list[str], next_steps: list[str]
) -> Change:
    """A status update goes out: the cadence restarts from now."""
    state.last_update_at = now
    state.next_update_at = now + policy.cadence(state.severity)
    key = f"update:{now:%Y%m%dT%H%M%S%f}:{state.version}"
    return Change(notices=[Notice("update", key, notes=notes, next_steps=next_steps)])


def update(
    state: State,
    *,
    actor: str,
    now: datetime,
    policy: IncidentPolicy,
    text: str | None,
    status: str | None = None,
    severity: str | None = None,
    next_steps: list[str] | None = None,
) -> Change:
    _refuse_if_resolved(state, "updated")
    if text is None and status in (None, state.status) and severity in (None, state.severity):
        raise IncidentError("nothing to update: give a text, a new status or a new severity")
    change = Change()
    steps = list(next_steps or [])
    notes = [text] if text else []
    if text:
        change.events.append(Event(now, "update", actor, text, {"next_steps": steps}))
    if status is not None and status != state.status:
        line = f"Status: {state.status} → {status}"
        change.events.append(Event(now, "status", actor, line, {"from": state.status, "to": status}))
        state.status = status
        notes.append(line)
    if severity is not None and severity != state.severity:
        line = f"Severity: {state.severity} → {severity}"
        change.events.append(Event(now, "severity", actor, line, {"from": state.severity, "to": severity}))
        state.severity = severity
        notes.append(line)
    change.extend(_communicated(state, now, policy, notes, steps))
    return change


def acknowledge(state: State, *, actor: str, now: datetime) -> Change:
    _refuse_if_resolved(state, "acknowledged")
    if state.acknowledged_at is not None:
        raise IncidentError(
            f"incident {state.label} was already acknowledged by {state.acknowledged_by} "
            f"at {fmt_time(state.acknowledged_at)}"
        )
    state.acknowledged_at, state.acknowledged_by = now, actor
    after = fmt_duration(now - state.detected_at)
    text = f"Acknowledged by {actor} after {after}; escalation stopped"
    return Change([Event(now, "acknowledged", actor, text)], [Notice("ack", "ack")])


def resolve(
    state: State,
    *,
    actor: str,
    now: datetime,
    fix: str | None = None,
    root_cause: str | None = None,
    follow_ups: list[str] | None = None,
) -> Change:
    _refuse_if_resolved(state, "resolved again")
    state.status, state.resolved_at = "resolved", now
    state.next_update_at = None
    state.fix = fix or state.fix
    state.root_cause = root_cause or state.root_cause
    text = f"Resolved after {fmt_duration(now - state.detected_at)}" + (f": {fix}" if fix else "")
    change = Change([Event(now, "resolved", actor, text)])
    for item in follow_ups or []:
        change.events.append(Event(now, "follow_up", actor, item))
    change.notices.append(Notice("resolution", "resolution", follow_ups=list(follow_ups or [])))
    return change


def tick(state: State, now: datetime, policy: IncidentPolicy, actor: str) -> Change:
    """Escalate an unacknowledged incident; remind the on-call when an update is overdue."""
    change = Change()
    if not state.is_open:
        return change
    if state.acknowledged_at is None and state.status != "monitoring":
        due = policy.due_levels(state.escalation_level, state.detected_at, now)
        for number in due:
            level = policy.level(number)
            assert level is not None
            if not policy.pages(number, state.severity):
                continue  # this level is not for this severity (runbook: executives for SEV-1 only)
            text = (
                f"Not acknowledged after {fmt_duration(now - state.detected_at)}: "
                f"escalated to level {number}: {level.name}"
            )
            change.events.append(Event(now, "escalated", actor, text, {"level": number}))
            change.notices.append(Notice("escalation", f"escalation:{number}", level=number))
        if due:
            state.escalation_level = max(due)
    due_at = state.next_update_at
    if due_at is not None and now >= due_at and state.reminded_for != due_at:
        state.reminded_for = due_at
        last = fmt_time(state.last_update_at, now)
        text = f"Status update overdue since {fmt_time(due_at, now)} (last one {last})"
        change.events.append(Event(now, "reminder", actor, text))
        change.notices.append(Notice("reminder", f"reminder:{due_at:%Y%m%dT%H%M%S}", level=1))
    return change
