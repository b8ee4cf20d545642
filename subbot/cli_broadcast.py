"""`subbot broadcast …`: send a message to a segment of members, follow it, cancel it.

The command only stores the broadcast and queues its first recipients; the running bot (`subbot run`)
delivers it through the outbox at BROADCAST_RATE messages per second and queues the rest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from subbot.cli_payments import with_app

if TYPE_CHECKING:
    from subbot.app import SubbotApp
    from subbot.services.broadcasts import Progress as BroadcastProgress

broadcast_cli = typer.Typer(
    help="Broadcasts: send a message to a segment of members, follow it, cancel it.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)
FINAL = ("done", "cancelled")


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@broadcast_cli.command("send")
def send_cmd(
    segment: Annotated[str, typer.Argument(help="Who receives it: active, expiring, expired or all")],
    text: Annotated[str | None, typer.Option(help="The message (plain text)")] = None,
    file: Annotated[
        Path | None, typer.Option(help="Read the message from this UTF-8 file", exists=True, dir_okay=False)
    ] = None,
    days: Annotated[int, typer.Option(help="For expiring: access ending within this many days")] = 7,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking for confirmation")] = False,
) -> None:
    """Preview the message and its recipient count, confirm, and queue it for the running bot."""
    from subbot.services import broadcasts

    if (text is None) == (file is None):
        raise _fail("give the message with exactly one of --text or --file", 2)
    raw = text if text is not None else file.read_text(encoding="utf-8") if file is not None else ""
    try:
        body = broadcasts.clean_text(raw)
        if segment not in broadcasts.SEGMENTS:
            raise broadcasts.BroadcastError(
                f"unknown segment {segment!r}; segments: {', '.join(broadcasts.SEGMENTS)}"
            )
    except broadcasts.BroadcastError as exc:
        raise _fail(str(exc), 2) from None
    seg_days = days if segment == "expiring" else None

    async def work(app: SubbotApp) -> int | None:
        count = await broadcasts.preview(app.ctx, segment, seg_days)
        who = broadcasts.describe_segment(segment, seg_days)
        console.print(Panel(body, title="the message, as members will see it", expand=False), markup=False)
        console.print(f"It goes to [bold]{count}[/] member{'s' if count != 1 else ''} ({who}).")
        if not yes and not typer.confirm("Send it?", default=False):
            return None
        created = await broadcasts.create(app.ctx, body, segment, seg_days, "cli")
        await broadcasts.queue_some(app.ctx)
        return created.id

    try:
        created_id = with_app(work)
    except broadcasts.BroadcastError as exc:
        raise _fail(str(exc), 2) from None
    if created_id is None:
        console.print("Not sent.")
        raise typer.Exit(1)
    console.print(
        f"broadcast [bold]{created_id}[/] created; the running bot delivers it. "
        f"Follow it with: subbot broadcast status {created_id} --follow"
    )


def _table(p: BroadcastProgress) -> Table:
    from subbot.services.broadcasts import describe_segment

    table = Table(title=f"Broadcast {p.id}", show_header=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    for label, value in (
        ("status", p.status),
        ("segment", describe_segment(p.segment, p.segment_days)),
        ("recipients", p.total),
        ("sent", p.sent),
        ("pending", p.pending),
        ("failed", p.failed),
        ("  of which blocked the bot", p.blocked),
        ("cancelled", p.cancelled),
        ("created", f"{p.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("finished", f"{p.finished_at:%Y-%m-%d %H:%M:%S} UTC" if p.finished_at else "-"),
    ):
        table.add_row(label, str(value))
    return table


@broadcast_cli.command("status")
def status_cmd(
    broadcast_id: Annotated[int, typer.Argument(help="The broadcast id")],
    follow: Annotated[bool, typer.Option(help="Show a progress bar until it is done or cancelled")] = False,
) -> None:
    """How far a broadcast got: sent, pending, failed, blocked, cancelled."""
    from subbot.services.broadcasts import BroadcastError, progress_of

    async def work(app: SubbotApp) -> BroadcastProgress:
        p = await progress_of(app.ctx, broadcast_id)
        if not follow or p.status in FINAL:
            return p
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"broadcast {broadcast_id}", total=p.total or None)
            while True:
                settled = p.sent + p.failed + p.cancelled
                bar.update(task, total=p.total or None, completed=settled, description=f"{p.status}")
                if p.status in FINAL:
                    return p
                await asyncio.sleep(1.0)
                p = await progress_of(app.ctx, broadcast_id)

    try:
        p = with_app(work)
    except BroadcastError as exc:
        raise _fail(str(exc), 1) from None
    console.print(_table(p))


@broadcast_cli.command("cancel")
def cancel_cmd(broadcast_id: Annotated[int, typer.Argument(help="The broadcast id")]) -> None:
    """Stop a broadcast: messages not yet sent are never sent."""
    from subbot.services.broadcasts import BroadcastError, cancel

    async def work(app: SubbotApp) -> int:
        return await cancel(app.ctx, broadcast_id, "cli")

    try:
        stopped = with_app(work)
    except BroadcastError as exc:
        raise _fail(str(exc), 1) from None
    console.print(f"broadcast {broadcast_id} cancelled; {stopped} messages will not be sent")
