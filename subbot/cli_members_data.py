"""`subbot members import` and `subbot members sync`: bring an existing group in, and keep it honest.

Registered on ``members_cli`` when ``subbot.cli_members`` imports this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from subbot.cli_members import members_cli
from subbot.cli_payments import with_app

if TYPE_CHECKING:
    from subbot.app import SubbotApp
    from subbot.services.member_import import ImportReport
    from subbot.services.member_sync import ChatSync, Seen, SyncReport

console = Console()
err = Console(stderr=True)
T = TypeVar("T")
SHOWN = 50  # people listed per section of the sync report


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _grant_days(grant: str) -> int | None:
    """``lifetime`` -> None; ``days:N`` -> N."""
    value = grant.strip().lower()
    if value == "lifetime":
        return None
    if value.startswith("days:") and value[5:].isdigit() and 1 <= int(value[5:]) <= 36500:
        return int(value[5:])
    raise _fail(f"--grant must be 'lifetime' or 'days:N' (N from 1 to 36500), not {grant!r}", 2)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield update


def _run(work: Callable[[SubbotApp], Awaitable[T]]) -> T:
    from subbot.config import ConfigError

    try:
        return with_app(work)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


@members_cli.command("import")
def import_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="Telegram Desktop export (result.json), JSON list, CSV with a user_id column, or ids",
            show_default=False,
        ),
    ],
    grant: Annotated[str, typer.Option(help="Access to give: lifetime, or days:N")] = "lifetime",
    plan: Annotated[str | None, typer.Option(help="Plan code (default: the first configured)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing")] = False,
    chat: Annotated[
        int | None, typer.Option(help="Record membership of this chat only (default: the plan's chats)")
    ] = None,
) -> None:
    """Import existing members: access without a message, an invite or a removal. Safe to re-run."""
    from subbot.services.member_import import (
        ImportFileError,
        ImportOptionError,
        ImportOptions,
        import_members,
    )

    days = _grant_days(grant)

    async def work(app: SubbotApp) -> ImportReport:
        if not dry_run:
            await app.prepare()  # mirrors the configured plans, which the subscriptions refer to
        options = ImportOptions(
            plan_code=plan,
            days=days,
            chat_ids=(chat,) if chat is not None else None,
            dry_run=dry_run,
            exclude_ids=frozenset({app.bot.id}),
        )
        with _progress("dry run" if dry_run else "importing") as progress:
            return await import_members(app.ctx, file, options, progress)

    try:
        report = _run(work)
    except ImportFileError as exc:
        raise _fail(str(exc), 1) from None
    except ImportOptionError as exc:
        raise _fail(str(exc), 2) from None
    except KeyboardInterrupt:
        err.print(
            "interrupted: batches already committed are kept; run the same command again to continue",
            highlight=False,
        )
        raise typer.Exit(130) from None
    print_import_report(report)


def print_import_report(report: ImportReport) -> None:
    would = "would be " if report.dry_run else ""
    title = f"Import of {report.path} ({report.format})"
    if report.dry_run:
        title += ": DRY RUN, nothing was written"
    console.print(f"[bold]{escape(title)}[/]", highlight=False)
    console.print(
        f"plan {escape(report.plan)}, {report.grant} access, chats {', '.join(map(str, report.chats))}",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = (
        ("messages read" if report.format == "Telegram Desktop export" else "rows read", report.rows_read),
        ("people (distinct valid ids)", report.people),
        (f"{would}imported (new access)", report.imported),
        ("already present (has access)", report.already),
        (f"new users {would}recorded", report.users_created),
        (f"empty names {would}filled", report.names_filled),
        (f"memberships {would}recorded", report.memberships_added),
        ("memberships already recorded (kept)", report.memberships_kept),
        ("skipped", sum(report.skipped.values())),
    )
    for label, count in rows:
        table.add_row(label, f"{count:,}")
    console.print(table)
    if report.skipped:
        skipped = Table(title="Skipped rows", title_justify="left")
        skipped.add_column("reason")
        skipped.add_column("rows", justify="right")
        skipped.add_column(f"examples (line: value), up to {report.EXAMPLES}")
        for reason, count in report.skipped.most_common():
            shown = "; ".join(f"{p.line}: {p.value}" for p in report.examples.get(reason, []))
            skipped.add_row(reason, f"{count:,}", escape(shown))
        console.print(skipped)
    if report.dry_run:
        console.print("verification: skipped in a dry run (run without --dry-run to import)")
    for chat in report.chats:
        if chat in report.verified:
            console.print(
                f"verification, chat {chat}: {report.verified[chat]:,} of {report.people:,} listed people "
                f"have access; {report.with_access[chat]:,} members with access in total",
                highlight=False,
            )
    console.print(
        f"done in {report.elapsed:.1f} s. Nobody was messaged or removed; no job was queued.",
        highlight=False,
    )


@members_cli.command("sync")
def sync_cmd(
    apply: Annotated[
        bool, typer.Option("--apply", help="Queue removal of those in the group without access")
    ] = False,
    chat: Annotated[int | None, typer.Option(help="Only this chat (default: every configured chat)")] = None,
) -> None:
    """Compare the group with subscriptions (known people only); with --apply, remove who has no access."""
    from subbot.services.member_sync import SyncError, sync_members

    async def work(app: SubbotApp) -> SyncReport:
        with _progress("checking") as progress:
            return await sync_members(
                app.ctx,
                app.gateway,
                chat_id=chat,
                apply=apply,
                bot_id=app.bot.id,
                progress=progress,
            )

    try:
        report = _run(work)
    except SyncError as exc:
        raise _fail(str(exc), 2) from None
    print_sync_report(report)
    if any(c.problem or c.errors for c in report.chats):
        raise typer.Exit(1)


def _people(title: str, people: list[Seen]) -> Table:
    table = Table(title=f"{title} ({len(people)})", title_justify="left")
    for column in ("user id", "name", "telegram status", "detail"):
        table.add_column(column)
    for s in people[:SHOWN]:
        table.add_row(str(s.user_id), escape(s.name), s.status, escape(s.detail))
    if len(people) > SHOWN:
        table.add_row("…", f"{len(people) - SHOWN} more", "", "")
    return table


def print_sync_report(report: SyncReport) -> None:
    console.print(
        "[bold]Group sync[/]: the Bot API cannot list a group's members, so only known people are "
        "checked (membership records and everyone with access); someone who joined without the bot "
        "ever seeing them is not found.",
        highlight=False,
    )
    for c in report.chats:
        _print_chat(c, report.apply)


def _print_chat(c: ChatSync, apply: bool) -> None:
    console.rule(f"chat {c.chat_id}")
    if c.problem:
        console.print(f"[bold red]not checked:[/] {escape(c.problem)}", highlight=False)
        return
    counts = Table(show_header=False)
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for label, n in (
        ("people checked", c.checked),
        ("in the group with access", c.with_access_in),
        ("in the group WITHOUT access", len(c.intruders)),
        ("owners/admins without access (never removed)", len(c.staff_without_access)),
        ("with access, NOT in the group", len(c.missing)),
        ("lookups failed", len(c.errors)),
        ("membership records updated", c.memberships_updated),
    ):
        counts.add_row(label, f"{n:,}")
    counts.add_row("telegram statuses", ", ".join(f"{k} {v}" for k, v in sorted(c.statuses.items())))
    console.print(counts)
    for title, people in (
        ("In the group without access", c.intruders),
        ("With access but not in the group", c.missing),
        ("Owners and admins without access (kept)", c.staff_without_access),
        ("Lookups that failed (nothing concluded)", c.errors),
    ):
        if people:
            console.print(_people(title, people))
    if apply:
        console.print(
            f"removals queued for the running bot's outbox worker: {len(c.queued)}"
            + (f" ({', '.join(str(s.user_id) for s in c.queued[:SHOWN])})" if c.queued else "")
            + (f"; already queued today: {len(c.already_queued)}" if c.already_queued else "")
            + (f"; spared (access since the check): {len(c.spared)}" if c.spared else ""),
            highlight=False,
        )
    elif c.intruders:
        console.print("nothing removed: run with --apply to queue their removal", highlight=False)
