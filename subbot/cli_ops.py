"""`subbot maintenance on|off|status`, and the process entry behind the repository's ``main.py``."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from subbot.config import Settings
    from subbot.ops.maintenance import FlagState

maintenance_cli = typer.Typer(
    help="Maintenance mode for every running instance (members get a message; admins, payments and "
    "webhooks keep working).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
log = logging.getLogger(__name__)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings() -> Settings:
    from subbot.cli import load_or_exit

    settings: Settings = load_or_exit()
    return settings


async def with_db(settings: Settings, work: Any) -> Any:
    """Run ``work(db)`` on the configured database once its schema is current (else exit 2)."""
    from subbot.store.db import create_database
    from subbot.store.migrate import SchemaState, schema_state

    db = create_database(settings.database_url, pooler=not settings.database_statement_cache_enabled)
    try:
        state, _ = await schema_state(db)
        if state is not SchemaState.CURRENT:
            raise _fail(f"the database schema is {state.value}: run `subbot migrate` first", 2)
        return await work(db)
    finally:
        await db.dispose()


def _run_db(settings: Settings, work: Any) -> Any:
    try:
        return asyncio.run(with_db(settings, work))
    except typer.Exit:
        raise
    except Exception as exc:
        raise _fail(f"cannot reach the database {settings.database_url_masked}: {exc}", 1) from None


def _show(settings: Settings, flag: FlagState | None) -> None:
    from subbot.ops.maintenance import REFRESH_SECONDS, effective

    state = effective(settings.maintenance_mode, settings.maintenance_message, flag)
    if flag is None:
        console.print("database flag:  never set (off)")
    else:
        when = flag.updated_at.isoformat(timespec="seconds") if flag.updated_at else "?"
        console.print(
            f"database flag:  {'ON' if flag.enabled else 'off'} (by {flag.actor or '?'} at {when})",
            highlight=False,
        )
    console.print(
        f"MAINTENANCE_MODE here: {'ON' if settings.maintenance_mode else 'off'} "
        "(environment or main.py of this shell; a running instance uses its own)",
        highlight=False,
    )
    label = "[bold yellow]ON[/]" if state.enabled else "[green]off[/]"
    console.print(f"effective:      {label} (source: {state.source})")
    if state.enabled:
        console.print(f"members are told: {state.message}", highlight=False)
    console.print(f"Running instances pick the flag up within {REFRESH_SECONDS:g} s.")


def _switch(enabled: bool, message: str | None, actor: str) -> None:
    from subbot.ops import maintenance

    settings = _settings()
    try:
        maintenance.clean_message(message)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None

    async def work(db: Any) -> FlagState:
        return await maintenance.write_flag(
            db, enabled=enabled, message=message, actor=actor, now=datetime.now(UTC)
        )

    flag: FlagState = _run_db(settings, work)
    _show(settings, flag)
    if not enabled and settings.maintenance_mode:
        err.print(
            "[yellow]note:[/] MAINTENANCE_MODE is set in this environment (or main.py); an instance started "
            "with it stays in maintenance until it is unset and the instance restarted.",
            highlight=False,
        )


@maintenance_cli.command("on")
def maintenance_on(
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Text members get (default MAINTENANCE_MESSAGE)")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who switched it, for the audit log")] = "cli",
) -> None:
    """Members get the maintenance message; admins, payments, webhooks and the outbox keep working."""
    _switch(True, message, actor)


@maintenance_cli.command("off")
def maintenance_off(
    actor: Annotated[str, typer.Option(help="Who switched it, for the audit log")] = "cli",
) -> None:
    """Serve members normally again."""
    _switch(False, None, actor)


@maintenance_cli.command("status")
def maintenance_status() -> None:
    """Show the database flag, this environment's MAINTENANCE_MODE and the effective state."""
    from subbot.ops.maintenance import read_flag

    settings = _settings()
    _show(settings, _run_db(settings, read_flag))


# ------------------------------------------------------------------ main.py
def _run(overrides: dict[str, Any], host: str | None, port: int | None) -> None:
    """What `subbot run` does, with settings overrides (main.py's MAINTENANCE_MODE = True)."""
    from subbot.app import StartupError, SubbotApp
    from subbot.cli import load_or_exit
    from subbot.config import ConfigError
    from subbot.logging_setup import configure_logging
    from subbot.polling_lock import LockHeld
    from subbot.runner import serve

    settings = load_or_exit(**overrides)
    try:
        settings.require_for_run()
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    configure_logging(settings)
    # Docker and Railway stop a container with SIGTERM.  uvicorn re-raises the signal once its server has
    # shut down; with the default action the process would die there, before the workers stop and the
    # polling lock is released.  Treated like Ctrl+C instead, the shutdown completes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if overrides.get("maintenance_mode"):
        log.warning("maintenance mode is ON from main.py (MAINTENANCE_MODE = True)")
    try:
        app = SubbotApp(settings)
        asyncio.run(serve(app, host or settings.host, port or settings.port))
    except (StartupError, LockHeld) as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        pass


def main_overrides(maintenance_mode: bool, maintenance_message: str) -> dict[str, Any]:
    """main.py's constants as settings overrides: only ``MAINTENANCE_MODE = True`` overrides anything.

    With the default ``False`` the environment decides (MAINTENANCE_MODE / MAINTENANCE_MESSAGE), so the
    unedited main.py never switches off a maintenance mode set in the environment.
    """
    if not maintenance_mode:
        return {}
    return {"maintenance_mode": True, "maintenance_message": maintenance_message}


def run_main(maintenance_mode: bool, maintenance_message: str, argv: list[str] | None = None) -> None:
    """``python main.py [--host H] [--port P]``: `subbot run` with main.py's maintenance constants."""
    overrides = main_overrides(maintenance_mode, maintenance_message)
    entry = typer.Typer(add_completion=False)

    @entry.command()
    def run(
        host: Annotated[str | None, typer.Option(help="Listen address (default: HOST)")] = None,
        port: Annotated[int | None, typer.Option(help="Listen port (default: PORT)")] = None,
    ) -> None:
        """Run subbot (same as `subbot run`), honouring MAINTENANCE_MODE / MAINTENANCE_MESSAGE in main.py."""
        _run(overrides, host, port)

    entry(args=argv, prog_name="main.py")
