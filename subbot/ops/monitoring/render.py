"""Monitor output: a Rich table for people, one JSON object per pass for machines."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from subbot.ops.monitoring.base import Status, worst

if TYPE_CHECKING:
    from subbot.ops.monitor import Pass

STYLES = {Status.OK: "green", Status.DEGRADED: "yellow", Status.CRITICAL: "bold red", Status.UNKNOWN: "dim"}


def render_pass(p: Pass, now: datetime, *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(p.to_json(now.isoformat()), ensure_ascii=False), flush=True)
        return
    console = Console(width=None if sys.stdout.isatty() else 140)
    overall = worst(p.results)
    table = Table(title=f"subbot monitor {now:%Y-%m-%d %H:%M:%S} UTC: {overall.value.upper()}")
    table.add_column("check")
    table.add_column("status")
    table.add_column("severity")
    table.add_column("ms", justify="right")
    table.add_column("details", overflow="fold")
    for r in p.results:
        style = STYLES[r.status]
        ms = "" if r.latency_ms is None else f"{r.latency_ms:.0f}"
        table.add_row(
            r.component,
            f"[{style}]{r.status.value}[/]",
            r.severity.value if r.severity else "",
            ms,
            r.summary,
        )
    console.print(table, highlight=False)
    for s in p.sent:
        channels = ", ".join(d.transport for d in s.deliveries if d.ok) or "no channel"
        console.print(f"alert {s.kind}: {s.component} ({s.severity}) → {channels}", highlight=False)
