"""`subbot members …`: operators managing people (the same services as the admin bot and dashboard)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from subbot.cli_payments import with_app

if TYPE_CHECKING:
    from subbot.app import SubbotApp
    from subbot.services.members import MemberSummary
    from subbot.store.models import User

members_cli = typer.Typer(help="Members: look up, grant, extend, whitelist, revoke, remove, import, sync.")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
ACTOR = "cli"

Query = Annotated[str, typer.Argument(help="Numeric user id or @username", show_default=False)]
Days = Annotated[str, typer.Argument(help="Number of days (1-3650)", show_default=False)]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _say(message: str) -> None:
    console.print(message, markup=False, highlight=False)


def _act(work: Callable[[SubbotApp], Awaitable[T]]) -> T:
    """Run ``work`` with the app; an operator-facing refusal becomes one red line and exit 1."""
    from subbot.bot.admin import Refusal
    from subbot.services.members import MemberError

    try:
        return with_app(work)
    except (Refusal, MemberError) as exc:
        raise _fail(str(exc)) from None


async def _lookup(app: SubbotApp, query: str) -> User:
    from subbot.bot.admin import lookup

    return await lookup(app.ctx, query)


def _who(user: User) -> str:
    from subbot.bot.admin import display_name

    return display_name(user)


def _days(value: str) -> int:
    from subbot.bot.admin import Refusal, parse_days

    try:
        return parse_days(value)
    except Refusal as exc:
        raise _fail(str(exc)) from None


@members_cli.command("show")
def show_cmd(query: Query) -> None:
    """Show a member: subscriptions, groups, payments and the audit trail."""
    from subbot.services import members

    async def work(app: SubbotApp) -> MemberSummary:
        user = await _lookup(app, query)
        return await members.summary(app.ctx, user.id)

    _print_summary(_act(work))


def _print_summary(summary: MemberSummary) -> None:
    from subbot.domain.money import Money

    user = summary.user
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or "(no name)"
    lines = [
        f"[bold]{escape(name)}[/]" + (f"  @{escape(user.username)}" if user.username else ""),
        f"id {user.id}",
        "whitelisted: [green]yes[/] (lifetime free access)" if user.is_whitelisted else "whitelisted: no",
        f"first seen {user.created_at:%Y-%m-%d %H:%M} UTC",
    ]
    if user.blocked_bot_at is not None:
        lines.append(f"[yellow]blocked the bot since {user.blocked_bot_at:%Y-%m-%d %H:%M} UTC[/]")
    console.print(Panel("\n".join(lines), title="member", expand=False), highlight=False)

    subs = Table(title="Subscriptions", title_justify="left")
    for column in ("id", "plan", "status", "starts", "ends", "source"):
        subs.add_column(column)
    for s in summary.subscriptions:
        subs.add_row(
            str(s.id),
            escape(s.plan_code),
            s.status,
            f"{s.starts_at:%Y-%m-%d %H:%M}",
            f"{s.ends_at:%Y-%m-%d %H:%M}" if s.ends_at else "lifetime",
            s.source,
        )
    console.print(subs if summary.subscriptions else "Subscriptions: none")

    groups = Table(title="Groups", title_justify="left")
    for column in ("chat", "state", "source", "since"):
        groups.add_column(column)
    for m in summary.memberships:
        groups.add_row(str(m.chat_id), m.state, m.source, f"{m.updated_at:%Y-%m-%d %H:%M}")
    console.print(groups if summary.memberships else "Groups: none recorded")

    pays = Table(title="Payments (latest first)", title_justify="left")
    for column in ("id", "date", "amount", "refunded", "provider", "order", "status"):
        pays.add_column(column)
    for p in summary.payments[:10]:
        pays.add_row(
            str(p.id),
            f"{p.created_at:%Y-%m-%d %H:%M}",
            Money(p.amount_minor, p.currency).format(),
            Money(p.refunded_minor, p.currency).format() if p.refunded_minor else "",
            p.provider,
            escape(p.order_id or "-"),
            p.status,
        )
    console.print(pays if summary.payments else "Payments: none")

    log = Table(title="Audit (latest first)", title_justify="left")
    for column in ("at", "actor", "action", "details"):
        log.add_column(column)
    for a in summary.audit[:10]:
        details = ", ".join(f"{k}={v}" for k, v in (a.details or {}).items())
        log.add_row(f"{a.at:%Y-%m-%d %H:%M}", escape(a.actor), a.action, escape(details))
    console.print(log if summary.audit else "Audit: nothing yet")


@members_cli.command("grant")
def grant_cmd(
    query: Query,
    days: Days,
    plan: Annotated[str | None, typer.Option(help="Plan code (default: the first configured)")] = None,
) -> None:
    """Give DAYS of a plan; extends a current subscription of that plan from its end."""
    from subbot.services import members
    from subbot.store.models import PlanRow

    count = _days(days)

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        code = plan or next(iter(app.ctx.plans), "")
        if app.ctx.plan(code) is not None:
            async with app.db.sessions() as session:
                mirrored = await session.get(PlanRow, code)
            if mirrored is None:
                raise members.MemberError(
                    f"plan {code!r} is configured but not yet in the database: start the bot once "
                    "(`subbot run`) so the configured plans are mirrored"
                )
        sub = await members.grant_days(app.ctx, user.id, count, ACTOR, plan)
        until = f"until {sub.ends_at:%Y-%m-%d %H:%M} UTC" if sub.ends_at else "for life"
        return f"granted {count} days of {sub.plan_code} to {_who(user)}: {until}; invite queued"

    _say(_act(work))


@members_cli.command("extend")
def extend_cmd(query: Query, days: Days) -> None:
    """Add DAYS to the member's current subscription (the one ending last)."""
    from subbot.services import members

    count = _days(days)

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        sub = await members.extend(app.ctx, user.id, count, ACTOR)
        until = f"until {sub.ends_at:%Y-%m-%d %H:%M} UTC" if sub.ends_at else "for life"
        return f"extended {sub.plan_code} of {_who(user)} by {count} days: {until}"

    _say(_act(work))


@members_cli.command("whitelist")
def whitelist_cmd(query: Query) -> None:
    """Lifetime free access; an invite is sent when they are not in the group."""
    from subbot.services import members

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        await members.set_whitelist(app.ctx, user.id, True, ACTOR)
        return f"whitelisted {_who(user)}; invite queued"

    _say(_act(work))


@members_cli.command("unwhitelist")
def unwhitelist_cmd(query: Query) -> None:
    """End the lifetime free access (subscriptions are unchanged; `remove` takes them out)."""
    from subbot.services import members

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        await members.set_whitelist(app.ctx, user.id, False, ACTOR)
        return f"{_who(user)} is no longer whitelisted"

    _say(_act(work))


@members_cli.command("revoke")
def revoke_cmd(
    query: Query,
    reason: Annotated[str, typer.Option(help="Recorded in the audit log")] = "revoked by an operator",
) -> None:
    """End every active subscription now and remove the member where nothing else covers them."""
    from subbot.services import members

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        n = await members.revoke(app.ctx, user.id, ACTOR, reason[:200])
        return f"revoked {_who(user)}: {n} subscription(s) ended; removal and notice queued"

    _say(_act(work))


@members_cli.command("remove")
def remove_cmd(
    query: Query,
    chat: Annotated[
        int | None, typer.Option(help="Only this chat id (default: every configured chat)")
    ] = None,
) -> None:
    """Remove the member from the group(s) now, whatever their subscription."""
    from subbot.services import members

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        chats = app.ctx.all_chat_ids()
        if chat is not None and chat not in chats:
            raise members.MemberError(
                f"chat {chat} is not configured; chats: {', '.join(map(str, chats)) or 'none'}"
            )
        removed = await members.remove_from_group(app.ctx, user.id, ACTOR, chat)
        return f"removal of {_who(user)} from {len(removed)} chat(s) queued: {', '.join(map(str, removed))}"

    _say(_act(work))


@members_cli.command("resend")
def resend_cmd(query: Query) -> None:
    """Send a fresh personal invite link to a member with access."""
    from subbot.services import members

    async def work(app: SubbotApp) -> str:
        user = await _lookup(app, query)
        await members.resend_invite(app.ctx, user.id, ACTOR)
        return f"invite for {_who(user)} queued"

    _say(_act(work))


from subbot import cli_members_data as _data  # noqa: E402, F401  (members import, members sync)
