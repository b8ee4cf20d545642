"""The `subbot` command: run, demo, migrate, version (more groups arrive with later issues)."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console

from subbot import __version__

cli = typer.Typer(
    help="subbot: Telegram paid-subscription bot and its operations toolkit.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def load_or_exit(**overrides: object):  # type: ignore[no-untyped-def]
    """Settings, or exit 2 with the one-line reason."""
    from subbot.config import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@cli.command()
def version() -> None:
    """Print the version."""
    console.print(f"subbot {__version__}")


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to this version of the code."""
    from subbot.store.db import create_database
    from subbot.store.migrate import upgrade

    settings = load_or_exit()

    async def go() -> str | None:
        db = create_database(settings.database_url, pooler=not settings.database_statement_cache_enabled)
        try:
            return await upgrade(db)
        finally:
            await db.dispose()

    try:
        revision = asyncio.run(go())
    except Exception as exc:
        raise _fail(f"migration failed on {settings.database_url_masked}: {exc}", 1) from None
    console.print(f"database {settings.database_url_masked} is at revision [bold]{revision}[/]")


@cli.command()
def run(
    host: Annotated[str | None, typer.Option(help="Listen address (default: HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: PORT)")] = None,
) -> None:
    """Run everything in one process: HTTP server, bot (polling or webhook) and workers."""
    from subbot.app import StartupError, SubbotApp
    from subbot.config import ConfigError
    from subbot.logging_setup import configure_logging
    from subbot.polling_lock import LockHeld
    from subbot.runner import serve

    settings = load_or_exit()
    try:
        settings.require_for_run()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    configure_logging(settings)
    # Docker and Railway stop with SIGTERM: stop like Ctrl+C, so workers finish and the lock is released.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app = SubbotApp(settings)
        asyncio.run(serve(app, host or settings.host, port or settings.port))
    except (StartupError, LockHeld) as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        pass


@cli.command("check-rights")
def check_rights_cmd() -> None:
    """Check the bot's admin rights (can_invite_users, can_restrict_members) in every configured chat."""
    from subbot.app import SubbotApp
    from subbot.services.rights import ChatRights

    settings = load_or_exit()

    async def go() -> list[ChatRights]:
        app = SubbotApp(settings)
        try:
            return await app.report_rights()
        finally:
            await app.stop()

    results = asyncio.run(go())
    for result in results:
        console.print(("[green]✓[/] " if result.ok else "[red]✗[/] ") + result.describe(), highlight=False)
    if not results:
        console.print("no chats configured (GROUP_ID, EXTRA_CHAT_IDS, plans file)")
    raise typer.Exit(0 if results and all(r.ok for r in results) else 1)


@cli.command()
def demo(
    port: Annotated[int, typer.Option(help="subbot's HTTP port")] = 8080,
    sandbox_port: Annotated[int, typer.Option(help="The Telegram sandbox's HTTP port")] = 8081,
    fresh: Annotated[bool, typer.Option(help="Start from an empty demo database")] = False,
) -> None:
    """The whole system on SQLite against the local Telegram sandbox: no accounts, no network."""
    from subbot.demo import run_demo

    try:
        asyncio.run(run_demo(port=port, sandbox_port=sandbox_port, fresh=fresh))
    except KeyboardInterrupt:
        pass


def _register_groups() -> None:
    from subbot.cli_broadcast import broadcast_cli
    from subbot.cli_members import members_cli
    from subbot.cli_ops import maintenance_cli
    from subbot.cli_payments import payments_cli

    cli.add_typer(payments_cli, name="payments")
    cli.add_typer(members_cli, name="members")
    cli.add_typer(broadcast_cli, name="broadcast")
    cli.command("monitor")(__import__("subbot.cli_monitor", fromlist=["monitor_cmd"]).monitor_cmd)
    cli.add_typer(maintenance_cli, name="maintenance")
    cli.add_typer(__import__("subbot.cli_data", fromlist=["data_cli"]).data_cli, name="data")
    cli.add_typer(__import__("subbot.cli_incident", fromlist=["x"]).incident_cli, name="incident")
    cli.add_typer(__import__("subbot.cli_admin", fromlist=["admin_cli"]).admin_cli, name="admin")


_register_groups()


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
