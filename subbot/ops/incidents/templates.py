"""The runbook's communication templates (initial response, status update, resolution notice) plus the
escalation, acknowledgement and overdue-update messages, rendered for Slack (mrkdwn) and Telegram (HTML).

A message is built once as lines of segments and rendered twice, so both channels say the same thing;
every value is escaped for its format (Slack: ``& < >``; Telegram HTML: ``& < >``), so a title such as
``<b>DB</b> & co`` is shown as typed and can never break the parse mode.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from subbot.ops.incidents.impact import Impact
from subbot.ops.incidents.model import Notice, State, fmt_duration, fmt_time
from subbot.ops.incidents.policy import IncidentPolicy

ICONS = {"SEV-1": "🔴", "SEV-2": "🟠", "SEV-3": "🟡"}
MAX_ITEM = 500  # characters of one listed item: keeps a message far below Telegram's 4096
MAX_ITEMS = 8
REVIEW_DUE = timedelta(days=2)

Segment = tuple[str, str]  # (kind, text): t plain, b bold, c code
Line = list[Segment]


@dataclass(frozen=True)
class Rendered:
    slack: str
    telegram: str


def _cut(text: str, limit: int = MAX_ITEM) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack(lines: list[Line], mentions: tuple[str, ...]) -> str:
    out = []
    for line in lines:
        parts = []
        for kind, text in line:
            value = _slack(text)
            if kind == "b":
                value = f"*{value}*"
            elif kind == "c":
                value = "`" + value.replace("`", "'") + "`"
            parts.append(value)
        out.append("".join(parts))
    if mentions:
        out.append(" ".join(mentions))  # configured mentions such as <@U024BE7LH>: sent as written
    return "\n".join(out)


def to_telegram(lines: list[Line]) -> str:
    out = []
    for line in lines:
        parts = []
        for kind, text in line:
            value = html.escape(text, quote=False)
            if kind in ("b", "c"):
                tag = "b" if kind == "b" else "code"
                value = f"<{tag}>{value}</{tag}>"
            parts.append(value)
        out.append("".join(parts))
    return "\n".join(out)


def _field(name: str, value: str) -> Line:
    return [("t", f"{name}: {value}")]


def _items(title: str, items: list[str], empty: str) -> list[Line]:
    shown = [_cut(i) for i in items if i.strip()][-MAX_ITEMS:] or [empty]
    return [[("t", "")], [("b", title)], *([("t", f"- {item}")] for item in shown)]


def _impact(impact: Impact | None, state: State) -> str:
    if impact is None:
        return "being assessed (the database is unavailable)"
    return impact.headline() + (" so far" if state.is_open else "")


def _ack_hint(state: State) -> Line:
    if state.id is None:  # followed in memory: the database is down, acknowledging has to wait for it
        return [("t", "Acknowledging needs the database: possible as soon as it is back")]
    n = state.id
    return [
        ("t", "Acknowledge: "),
        ("c", f"/ack {n}"),
        ("t", " in the bot or "),
        ("c", f"subbot incident ack {n}"),
    ]


def build(
    notice: Notice,
    state: State,
    policy: IncidentPolicy,
    now: datetime,
    *,
    impact: Impact | None,
    actions: list[str],
) -> list[Line]:
    label = f"#{state.id} {state.title}" if state.id is not None else state.title
    status = state.status.capitalize()
    next_update = fmt_time(state.next_update_at, now) if state.next_update_at else "none (resolved)"
    kind = notice.kind
    if kind == "initial":
        minutes = policy.update_minutes.get(state.severity, 15)
        lines = [
            [("t", f"{ICONS.get(state.severity, '⚠️')} "), ("b", f"INCIDENT: {label}")],
            _field("Severity", state.severity),
            _field("Status", status),
            _field("Impact", _impact(impact, state)),
            _field("ETA", f"Updates every {minutes} minutes"),
            _field("Components", ", ".join(state.components) or "not given"),
            *_items("Actions taken:", actions, "Incident opened"),
            [("t", "")],
            _field("Next update", next_update),
        ]
        if state.acknowledged_at is None:
            lines.append([*_ack_hint(state), ("t", f" (within {fmt_duration(policy.ack_within())})")])
        return lines
    if kind == "update":
        return [
            [("t", "📊 "), ("b", f"UPDATE: {label}")],
            _field("Time", fmt_time(now, now)),
            _field("Duration", fmt_duration(state.duration(now))),
            _field("Status", status),
            _field("Severity", state.severity),
            _field("Impact", _impact(impact, state)),
            *_items("Current situation:", notice.notes, "No change"),
            *_items("Next steps:", notice.next_steps, "Keep investigating; the next update follows"),
            [("t", "")],
            _field("Next update", next_update),
        ]
    if kind == "resolution":
        due = fmt_time((state.resolved_at or now) + REVIEW_DUE)
        review: Line = [("t", "Post-mortem: not required for SEV-3")]
        if state.severity in ("SEV-1", "SEV-2"):
            command = f"subbot incident review {state.id}"
            review = [("t", f"Post-mortem: due by {due} ("), ("c", command), ("t", ")")]
        return [
            [("t", "✅ "), ("b", f"RESOLVED: {label}")],
            _field("Duration", fmt_duration(state.duration(now))),
            _field("Root cause", _cut(state.root_cause or "to be established in the post-incident review")),
            _field("Fix applied", _cut(state.fix or "not recorded")),
            *_items("Impact summary:", impact.lines()[:-1] if impact else [], "not measured"),
            *_items("Follow-up actions:", notice.follow_ups, "Post-incident review"),
            [("t", "")],
            review,
        ]
    if kind == "ack":
        return [
            [("t", "👀 "), ("b", f"ACKNOWLEDGED: {label}")],
            _field("By", state.acknowledged_by or "?"),
            _field("After", fmt_duration((state.acknowledged_at or now) - state.detected_at)),
            _field("Status", status),
            [("t", "Escalation stopped.")],
        ]
    if kind == "escalation":
        level = policy.level(notice.level or 0)
        return [
            [("t", "⏫ "), ("b", f"ESCALATED: {label}")],
            _field("Level", f"{notice.level}: {level.name if level else '?'}"),
            _field("Severity", state.severity),
            _field("Status", status),
            _field("Impact", _impact(impact, state)),
            [("t", f"Not acknowledged after {fmt_duration(now - state.detected_at)}.")],
            _ack_hint(state),
        ]
    if kind == "reminder":
        n = state.id if state.id is not None else "ID"
        minutes = policy.update_minutes.get(state.severity, 15)
        return [
            [("t", "⏰ "), ("b", f"UPDATE OVERDUE: {label}")],
            _field("Last update", fmt_time(state.last_update_at, now)),
            _field("Due", f"{next_update} (every {minutes} min for {state.severity})"),
            _field("Status", status),
            [
                ("t", "Post one: "),
                ("c", f"/iupdate {n} <text>"),
                ("t", " or "),
                ("c", f'subbot incident update {n} "…"'),
            ],
        ]
    raise ValueError(f"unknown notice kind {kind!r}")


def render(
    notice: Notice,
    state: State,
    policy: IncidentPolicy,
    now: datetime,
    *,
    impact: Impact | None,
    actions: list[str],
) -> Rendered:
    lines = build(notice, state, policy, now, impact=impact, actions=actions)
    level = policy.level(notice.level) if notice.level else None
    return Rendered(to_slack(lines, level.slack if level else ()), to_telegram(lines))
