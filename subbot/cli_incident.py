"""`subbot incident open|update|ack|resolve|list|show|review`: incidents from the command line.

The same service as the admin bot and the dashboard: every action is audited, written to the incident's
timeline, and the status messages (Slack, Telegram) are sent before the command returns.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from subbot.ops.incidents.model import State
    from subbot.ops.incidents.service import Detail, Incidents

incident_cli = typer.Typer(
    help="Incidents: open, update, acknowledge, resolve, list, show, post-incident review.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

Id = Annotated[str, typer.Argument(help="Incident number (3 or #3)", show_default=False)]
By = Annotated[str | None, typer.Option("--by", help="Who acts, for the audit log (default: cli:<login>)")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)  # never re-wrapped: pipe-safe


def _actor(by: str | None) -> str:
    if by:
        return by
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (some containers): still audited
        return "cli"


def _run(work: Callable[[Incidents], Awaitable[T]]) -> T:
    """Open the database (schema must be current), run ``work``, report refusals as one red line."""
    from sqlalchemy.exc import SQLAlchemyError

    from subbot.cli import load_or_exit
    from subbot.cli_ops import with_db
    from subbot.domain.clock import SystemClock
    from subbot.ops.incidents.model import IncidentError
    from subbot.ops.incidents.service import Incidents
    from subbot.store.db import Database

    settings = load_or_exit()

    async def on_service(db: Database) -> T:
        service = Incidents.from_settings(settings, db, SystemClock())
        try:
            return await work(service)
        finally:
            await service.aclose()

    async def go() -> T:
        result: T = await with_db(settings, on_service)
        return result

    try:
        return asyncio.run(go())
    except IncidentError as exc:
        raise _fail(str(exc)) from None
    except typer.Exit:
        raise
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"cannot reach the database {settings.database_url_masked}: {exc}") from None


def _summary(state: State) -> None:
    from subbot.ops.incidents.model import fmt_time

    line = f"#{state.id} {state.severity} {state.status}: {state.title}"
    if state.next_update_at is not None:
        line += f" (next update due {fmt_time(state.next_update_at)})"
    _say(line)


@incident_cli.command("open")
def open_cmd(
    title: Annotated[str, typer.Argument(help="What is wrong, one line", show_default=False)],
    severity: Annotated[str, typer.Option("--severity", "-s", help="SEV-1, SEV-2 or SEV-3")] = "SEV-2",
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Affected component")
    ] = None,
    summary: Annotated[
        str | None, typer.Option(help="First facts (the initial message's first action)")
    ] = None,
    maintenance: Annotated[
        str | None, typer.Option(help="Also switch maintenance mode on: members are told this text")
    ] = None,
    by: By = None,
) -> None:
    """Open an incident: the initial message goes to the status channels and level 1 is paged."""
    actor = _actor(by)

    async def work(service: Incidents) -> State:
        state = await service.open(title, severity, actor=actor, components=component or [], summary=summary)
        if maintenance is not None and state.id is not None:
            state = await service.maintenance(state.id, on=True, actor=actor, message=maintenance or None)
        return state

    state = _run(work)
    _say(f"opened incident #{state.id}")
    _summary(state)


@incident_cli.command("update")
def update_cmd(
    incident: Id,
    text: Annotated[str | None, typer.Argument(help="What is happening now", show_default=False)] = None,
    status: Annotated[str | None, typer.Option(help="investigating, identified or monitoring")] = None,
    severity: Annotated[str | None, typer.Option(help="A new severity")] = None,
    next_step: Annotated[list[str] | None, typer.Option("--next", help="A next step (repeatable)")] = None,
    maintenance: Annotated[
        str | None, typer.Option(help="Switch maintenance mode on: members are told this text")
    ] = None,
    by: By = None,
) -> None:
    """Post a status update (the runbook's template) and restart the update cadence."""
    actor = _actor(by)

    async def work(service: Incidents) -> State:
        state = await service.update(
            incident, actor=actor, text=text, status=status, severity=severity, next_steps=next_step or []
        )
        if maintenance is not None and state.id is not None:
            state = await service.maintenance(state.id, on=True, actor=actor, message=maintenance or None)
        return state

    _summary(_run(work))


@incident_cli.command("ack")
def ack_cmd(incident: Id, by: By = None) -> None:
    """Acknowledge: stops the escalation."""
    actor = _actor(by)
    _summary(_run(lambda service: service.acknowledge(incident, actor=actor)))


@incident_cli.command("resolve")
def resolve_cmd(
    incident: Id,
    fix: Annotated[str | None, typer.Option(help="Fix applied")] = None,
    root_cause: Annotated[str | None, typer.Option(help="Root cause, in brief")] = None,
    follow_up: Annotated[list[str] | None, typer.Option(help="A follow-up action (repeatable)")] = None,
    by: By = None,
) -> None:
    """Resolve: the resolution notice goes out with the impact figures; maintenance mode it set ends."""
    actor = _actor(by)
    state = _run(
        lambda service: service.resolve(
            incident, actor=actor, fix=fix, root_cause=root_cause, follow_ups=follow_up or []
        )
    )
    _summary(state)
    if state.severity in ("SEV-1", "SEV-2"):
        _say(f"post-incident review: subbot incident review {state.id} --output review-{state.id}.md")


@incident_cli.command("list")
def list_cmd(
    all_: Annotated[bool, typer.Option("--all", help="Resolved incidents too")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Open incidents (or all), newest first."""
    from datetime import UTC, datetime

    from subbot.ops.incidents.model import fmt_duration, fmt_time

    found = _run(lambda service: service.list_incidents(open_only=not all_, limit=limit))
    if not found:
        _say("no open incident" if not all_ else "no incident yet")
        return
    now = datetime.now(UTC)
    table = Table("id", "sev", "status", "title", "detected", "duration", "acknowledged")
    for s in found:
        ack = s.acknowledged_by or ("—" if not s.is_open else "NO")
        table.add_row(
            f"#{s.id}",
            s.severity,
            s.status,
            escape(s.title),
            fmt_time(s.detected_at),
            fmt_duration(s.duration(now)),
            escape(ack),
        )
    console.print(table)


@incident_cli.command("show")
def show_cmd(incident: Id) -> None:
    """One incident: state, impact so far, timeline and every message sent."""
    from subbot.ops.incidents.model import fmt_time

    detail: Detail = _run(lambda service: service.get(incident))
    s = detail.incident
    _summary(s)
    _say(f"components: {', '.join(s.components) or '-'} · source: {s.source} · opened by {s.created_by}")
    _say(f"acknowledged: {s.acknowledged_by or 'no'} · escalation level: {s.escalation_level}")
    _say(f"impact: {detail.impact.headline()}")
    _say("timeline:")
    for e in detail.events:
        _say(f"  {fmt_time(e.at)}  {e.kind:<12} {e.text}  ({e.actor})")
    _say("messages:")
    for n in detail.notifications:
        where = "slack" if n.transport == "slack" else f"telegram {n.target}"
        _say(f"  {fmt_time(n.created_at)}  {n.kind:<10} {where:<24} {n.state} ({n.attempts} attempt(s))")


@incident_cli.command("review")
def review_cmd(
    incident: Id,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file")] = None,
    force: Annotated[bool, typer.Option(help="Also for SEV-3 or unresolved incidents (a draft)")] = False,
) -> None:
    """The post-incident review in Markdown (the runbook requires one for SEV-1 and SEV-2)."""
    text: Any = _run(lambda service: service.review(incident, force=force))
    if output is None:
        _say(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    _say(f"review written to {output}")
