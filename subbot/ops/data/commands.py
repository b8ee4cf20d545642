"""The data tools as commands: shared by ``scripts/*.py`` (the runbook) and ``subbot data …``.

Each ``run_*`` function loads the settings (environment, ``.env``), prints for an operator and returns
the exit code: 0 done (or clean), 1 refused / failed / problems found, 2 configuration error. Nothing
here imports aiogram, so the runbook scripts start fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from subbot.config import ConfigError, Settings, load_settings
from subbot.ops.data.common import DataToolError
from subbot.ops.data.common import Progress as ProgressFn
from subbot.store.db import Database, create_database

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def _settings(database_url: str | None) -> Settings:
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    return load_settings(**overrides)


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """A Rich progress bar on stderr (invisible when stderr is not a terminal)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(label: str, done: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def _run(
    database_url: str | None, work: Callable[[Database, Settings], Awaitable[T]]
) -> tuple[int, T | None]:
    """Open the database, run ``work``, close; map refusals and failures to exit codes."""
    try:
        settings = _settings(database_url)
    except ConfigError as exc:
        _error(str(exc))
        return 2, None

    async def go() -> T:
        db = create_database(settings.database_url, pooler=not settings.database_statement_cache_enabled)
        try:
            return await work(db, settings)
        finally:
            await db.dispose()

    try:
        return 0, asyncio.run(go())
    except DataToolError as exc:
        _error(str(exc))
    except KeyboardInterrupt:
        _error("interrupted; nothing was committed by the step in progress")
    except Exception as exc:  # a database error: say what and where, without a traceback
        _error(f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        err.print(f"database: {settings.database_url_masked}")
    return 1, None


# --- backup ---------------------------------------------------------------------------------------


def run_backup(output: Path | None = None, database_url: str | None = None) -> int:
    from subbot.ops.backup import backup_database, default_backup_path

    path = output or default_backup_path()

    async def work(db: Database, settings: Settings) -> Any:
        with progress_bar() as update:
            return await backup_database(db, path, progress=update)

    code, manifest = _run(database_url, work)
    if manifest is not None:
        out.print(
            f"backup written: {path} ({manifest.total_rows} rows in {len(manifest.tables)} tables, "
            f"schema {manifest.schema_revision}, {path.stat().st_size:,} bytes)"
        )
        out.print(f"sha256 {manifest.file_sha256} (also in {path.name}.sha256)")
    return code


# --- restore --------------------------------------------------------------------------------------


def _confirm(yes: bool, masked_url: str) -> Callable[[Any], bool]:
    def confirm(plan: Any) -> bool:
        m = plan.manifest
        out.print(f"backup {plan.backup}: schema {m.schema_revision}, taken {m.created_at} on {m.backend}, "
                  f"{m.total_rows} rows: verified")  # fmt: skip
        if plan.current_rows is None:
            out.print(f"target {masked_url}: empty (it is migrated first)")
        elif plan.recreate:
            out.print(f"target {masked_url}: {plan.current_total} rows at schema {plan.database_revision}, "
                      "newer than the backup's: every table is DROPPED and the schema rebuilt at "
                      f"{m.schema_revision}")  # fmt: skip
        else:
            out.print(f"target {masked_url}: {plan.current_total} rows at schema {plan.database_revision} "
                      "will be REPLACED")  # fmt: skip
        if yes:
            return True
        if not sys.stdin.isatty():
            raise DataToolError("not overwriting the database without confirmation: no terminal to ask on; "
                                "re-run with --yes")  # fmt: skip
        answer = input("Replace every row of this database with the backup? Type 'yes' to go on: ")
        return answer.strip().lower() == "yes"

    return confirm


def run_restore(
    backup_file: Path,
    *,
    yes: bool = False,
    database_url: str | None = None,
    safety_dir: Path = Path("backups"),
) -> int:
    from subbot.ops.restore import restore_database

    async def work(db: Database, settings: Settings) -> Any:
        with progress_bar() as update:
            return await restore_database(
                db,
                backup_file,
                confirm=_confirm(yes, settings.database_url_masked),
                safety_dir=safety_dir,
                progress=update,
                on_safety_backup=lambda p: out.print(f"safety backup of the current database: {p}"),
            )

    code, result = _run(database_url, work)
    if result is not None:
        total = sum(result.rows.values())
        out.print(f"restored {total} rows from {backup_file}; database at schema {result.final_revision}")
    return code


# --- export / import ------------------------------------------------------------------------------


def run_export(output: Path | None = None, database_url: str | None = None) -> int:
    from subbot.ops.export_data import default_export_path, export_critical

    path = output or default_export_path()

    async def work(db: Database, settings: Settings) -> Any:
        with progress_bar() as update:
            return await export_critical(db, path, progress=update)

    code, header = _run(database_url, work)
    if header is not None:
        counts = ", ".join(f"{n} {c}" for n, c in header["counts"].items())
        out.print(f"export written: {path} ({counts})")
    return code


def run_import(file: Path, *, dry_run: bool = False, database_url: str | None = None) -> int:
    from subbot.ops.import_data import import_data

    async def work(db: Database, settings: Settings) -> Any:
        with progress_bar() as update:
            return await import_data(db, file, dry_run=dry_run, progress=update)

    code, report = _run(database_url, work)
    if report is None:
        return code
    out.print(f"{'DRY RUN: nothing was changed. ' if dry_run else ''}import of {file}:")
    out.print(f"  {'table':<14} {'created':>8} {'updated':>8} {'unchanged':>10} {'invalid':>8}")
    for name, t in report.tables.items():
        out.print(f"  {name:<14} {t.created:>8} {t.updated:>8} {t.unchanged:>10} {t.invalid:>8}")
    for reason in report.invalid:
        out.print(f"  invalid: {escape(reason)}")
    if report.invalid_total > len(report.invalid):
        out.print(f"  … and {report.invalid_total - len(report.invalid)} more invalid record(s)")
    return 0


# --- verify ---------------------------------------------------------------------------------------


def run_verify(*, fix: bool = False, as_json: bool = False, database_url: str | None = None) -> int:
    from subbot.ops.integrity import render, verify_integrity

    async def work(db: Database, settings: Settings) -> Any:
        admins = set(settings.admin_ids) | ({settings.admin_user_id} if settings.admin_user_id else set())
        return await verify_integrity(
            db, grace=timedelta(hours=settings.expiry_grace_hours), exempt_user_ids=sorted(admins), fix=fix
        )

    code, report = _run(database_url, work)
    if report is None:
        return code
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in render(report):
            out.print(escape(line))
    return 0 if report.clean else 1
