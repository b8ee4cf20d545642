"""What an incident is, as plain data: its state, timeline entries and the messages a change asks for.

No I/O here: the lifecycle works on these objects, the store maps them to rows, the tracker keeps them in
memory while the database is down.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SEVERITIES = ("SEV-1", "SEV-2", "SEV-3")
STATUSES = ("investigating", "identified", "monitoring", "resolved")
OPEN_STATUSES = STATUSES[:3]
MONITOR_KEY = "monitor"  # incidents.open_key of the monitor's open incident: one at a time
MAX_TITLE = 200
MAX_TEXT = 2000
MAX_ACTOR = 128
SEVERITY_RANK = {"SEV-3": 1, "SEV-2": 2, "SEV-1": 3}

# Characters that make a title lie about itself (bidi overrides, invisible separators) or break a message.
_SNEAKY = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


class IncidentError(Exception):
    """Bad input or an impossible change, worded for the operator; nothing was changed."""


@dataclass
class State:
    """One incident as the lifecycle sees it (``id`` None until stored)."""

    title: str
    severity: str
    status: str
    components: list[str]
    source: str  # monitor | manual
    detected_at: datetime
    last_update_at: datetime
    created_by: str
    id: int | None = None
    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    recovered_at: datetime | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 1
    next_update_at: datetime | None = None
    reminded_for: datetime | None = None
    root_cause: str | None = None
    fix: str | None = None
    maintenance: bool = False
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def label(self) -> str:
        return f"#{self.id}" if self.id is not None else "(new)"

    def duration(self, now: datetime) -> timedelta:
        return (self.resolved_at or now) - self.detected_at


@dataclass
class Event:
    """A timeline entry."""

    at: datetime
    kind: str  # detected | opened | paged | notified | finding | severity | status | update | acknowledged |
    #           escalated | reminder | recovered | failing | maintenance | resolved | follow_up | merged
    actor: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Notice:
    """A message a change asks for; rendered per channel and recorded as notification rows."""

    kind: str  # initial | update | ack | escalation | reminder | resolution
    key: str  # unique within the incident: keeps a message from being sent twice
    level: int | None = None  # the escalation level whose contacts receive it
    notes: list[str] = field(default_factory=list)  # "current situation" lines
    next_steps: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)


@dataclass
class Change:
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.notices)

    def extend(self, other: Change) -> None:
        self.events += other.events
        self.notices += other.notices


def clean_text(raw: str | None, what: str, limit: int = MAX_TEXT, *, required: bool = True) -> str | None:
    """Text an operator typed: NFC, no control or invisible direction characters, within ``limit``.

    HTML-looking text is fine: it is escaped wherever it is shown, never interpreted.
    """
    if raw is None or not raw.strip():
        if required:
            raise IncidentError(f"the {what} is empty")
        return None
    text = unicodedata.normalize("NFC", raw.strip())
    for ch in text:
        kind = unicodedata.category(ch)
        if (kind == "Cc" and ch not in "\n\t") or kind in ("Cs", "Co", "Cn") or _SNEAKY.match(ch):
            raise IncidentError(
                f"the {what} contains an invisible or control character (U+{ord(ch):04X}); type it plainly"
            )
    if len(text) > limit:
        raise IncidentError(f"the {what} is {len(text)} characters long; at most {limit}")
    return text


def clean_title(raw: str) -> str:
    title = clean_text(raw, "title", MAX_TITLE)
    assert title is not None
    if "\n" in title or "\t" in title:
        raise IncidentError("the title must be one line")
    return " ".join(title.split())


def clean_severity(raw: str) -> str:
    value = raw.strip().upper().replace("SEV", "SEV-").replace("--", "-")
    if value in ("1", "2", "3"):
        value = f"SEV-{value}"
    if value not in SEVERITIES:
        raise IncidentError(f"unknown severity {raw!r}: use SEV-1, SEV-2 or SEV-3")
    return value


def clean_status(raw: str) -> str:
    value = raw.strip().lower()
    if value == "resolved":
        raise IncidentError("resolve an incident with `resolve` (it records the fix and sends the notice)")
    if value not in OPEN_STATUSES:
        raise IncidentError(f"unknown status {raw!r}: use {', '.join(OPEN_STATUSES)}")
    return value


def clean_components(raw: list[str]) -> list[str]:
    found: list[str] = []
    for item in raw:
        for name in item.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
                raise IncidentError(f"component {name!r}: use letters, digits, - and _ (at most 32)")
            if name not in found:
                found.append(name)
    return found


def clean_actor(raw: str) -> str:
    actor = clean_text(raw, "actor", MAX_ACTOR)
    assert actor is not None
    return " ".join(actor.split())


def parse_id(raw: str | int) -> int:
    text = str(raw).strip().lstrip("#")
    if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) == 0:
        raise IncidentError(f"{str(raw)[:40]!r} is not an incident number (like 3 or #3)")
    return int(text)


def worse(a: str, b: str) -> str:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def fmt_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def fmt_time(at: datetime, now: datetime | None = None) -> str:
    """``14:05 UTC`` today, ``2026-01-02 14:05 UTC`` otherwise."""
    if now is not None and at.date() == now.date():
        return f"{at:%H:%M} UTC"
    return f"{at:%Y-%m-%d %H:%M} UTC"
