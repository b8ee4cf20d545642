"""`subbot admin …`: dashboard accounts (there is no default password; the first account is made here)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from subbot.store.db import Database

admin_cli = typer.Typer(help="Dashboard accounts: create, list, disable, enable, reset a password.")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
ACTOR = "cli"

Name = Annotated[
    str, typer.Argument(help="Account name (letters, digits, '_', '.', '-')", show_default=False)
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database once its schema is current; problems are one line."""
    from subbot.cli import load_or_exit
    from subbot.cli_ops import with_db
    from subbot.services.admin_accounts import AccountError

    settings = load_or_exit()

    async def go() -> T:
        result: T = await with_db(settings, work)
        return result

    try:
        return asyncio.run(go())
    except AccountError as exc:
        raise _fail(str(exc)) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise _fail("no password on standard input")
        return password
    first: str = typer.prompt("Password", hide_input=True)
    again: str = typer.prompt("Repeat the password", hide_input=True)
    if first != again:
        raise _fail("the two passwords differ; nothing was changed")
    return first


def _check_first(name: str, password: str) -> None:
    """Refuse a bad name or password before touching the database."""
    from subbot.services.admin_accounts import AccountError, check_password, normalise_name

    try:
        check_password(normalise_name(name), password)
    except AccountError as exc:
        raise _fail(str(exc)) from None


@admin_cli.command("create-user")
def create_user(name: Name, password_stdin: PasswordStdin = False) -> None:
    """Create a dashboard account; the password is asked twice (hidden) and stored as an argon2 hash."""
    from subbot.domain.clock import SystemClock
    from subbot.services.admin_accounts import AccountError, create_admin, normalise_name

    try:
        normalise_name(name)  # before asking for a password
    except AccountError as exc:
        raise _fail(str(exc)) from None
    password = _password(password_stdin)
    _check_first(name, password)
    admin = _with_db(lambda db: create_admin(db, SystemClock(), name, password, ACTOR))
    console.print(f"dashboard user [bold]{escape(admin.name)}[/] created; sign in at /dashboard/login")


@admin_cli.command("list-users")
def list_users() -> None:
    """Dashboard accounts with their last sign-in and open sessions."""
    from subbot.domain.clock import SystemClock
    from subbot.services.admin_accounts import list_admins

    rows = _with_db(lambda db: list_admins(db, SystemClock()))
    if not rows:
        console.print("no dashboard users yet: create one with `subbot admin create-user NAME`")
        return
    table = Table("name", "state", "created", "last sign-in", "sessions")
    for row in rows:
        last = f"{row.last_login_at:%Y-%m-%d %H:%M} UTC" if row.last_login_at else "never"
        table.add_row(
            escape(row.name),
            "disabled" if row.disabled else "enabled",
            f"{row.created_at:%Y-%m-%d}",
            last,
            str(row.sessions),
        )
    console.print(table)


@admin_cli.command("disable-user")
def disable_user(name: Name) -> None:
    """Disable an account and sign it out everywhere."""
    from subbot.domain.clock import SystemClock
    from subbot.services.admin_accounts import set_disabled

    _with_db(lambda db: set_disabled(db, SystemClock(), name, True, ACTOR))
    console.print(f"dashboard user {escape(name.strip().lower())} disabled; its sessions ended")


@admin_cli.command("enable-user")
def enable_user(name: Name) -> None:
    """Enable a disabled account again."""
    from subbot.domain.clock import SystemClock
    from subbot.services.admin_accounts import set_disabled

    _with_db(lambda db: set_disabled(db, SystemClock(), name, False, ACTOR))
    console.print(f"dashboard user {escape(name.strip().lower())} enabled")


@admin_cli.command("reset-password")
def reset_password_cmd(name: Name, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (asked twice, hidden); every session of that account ends."""
    from subbot.domain.clock import SystemClock
    from subbot.services.admin_accounts import reset_password

    password = _password(password_stdin)
    _check_first(name, password)
    _with_db(lambda db: reset_password(db, SystemClock(), name, password, ACTOR))
    console.print(f"password of {escape(name.strip().lower())} changed; its sessions ended")
