"""`subbot data backup|restore|export|import|verify`: the runbook's data tools (same as scripts/*.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

data_cli = typer.Typer(
    help="Backups, restores, critical-data export/import and integrity checks.", no_args_is_help=True
)
DbUrl = Annotated[str | None, typer.Option("--database-url", help="Database to use (default DATABASE_URL)")]


@data_cli.command("backup")
def backup_cmd(
    output: Annotated[
        Path | None, typer.Option(help="File to write (default backups/subbot-<time>.jsonl.gz)")
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Consistent, compressed, checksummed backup of every table."""
    from subbot.ops.data.commands import run_backup

    raise typer.Exit(run_backup(output, database_url))


@data_cli.command("restore")
def restore_cmd(
    backup_file: Annotated[Path, typer.Option("--backup-file", help="The .jsonl.gz backup to restore")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the data")] = False,
    database_url: DbUrl = None,
) -> None:
    """Verify a backup, take a safety backup, then replace every row in one transaction."""
    from subbot.ops.data.commands import run_restore

    raise typer.Exit(run_restore(backup_file, yes=yes, database_url=database_url))


@data_cli.command("export")
def export_cmd(
    output: Annotated[
        Path | None, typer.Option(help="File to write (default exports/critical-<time>.json)")
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Export the data needed to rebuild access as one JSON file."""
    from subbot.ops.data.commands import run_export

    raise typer.Exit(run_export(output, database_url))


@data_cli.command("import")
def import_cmd(
    file: Annotated[Path, typer.Option("--file", help="The export (JSON) to import")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; change nothing")
    ] = False,
    database_url: DbUrl = None,
) -> None:
    """Import a critical-data export idempotently (upserts by natural keys)."""
    from subbot.ops.data.commands import run_import

    raise typer.Exit(run_import(file, dry_run=dry_run, database_url=database_url))


@data_cli.command("verify")
def verify_cmd(
    fix: Annotated[bool, typer.Option("--fix", help="Perform the safe repairs only")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    database_url: DbUrl = None,
) -> None:
    """Check the data for inconsistencies; exit 1 with a report when anything is found."""
    from subbot.ops.data.commands import run_verify

    raise typer.Exit(run_verify(fix=fix, as_json=as_json, database_url=database_url))
