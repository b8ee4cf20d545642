"""Restore a backup: verify everything first, keep a safety backup, then replace all rows in ONE transaction.

Order of work: (1) read the whole file once, checking the sidecar, every table checksum and the manifest;
(2) check revisions (a backup newer than this code is refused); (3) ask (the caller's ``confirm``);
(4) back up the current database; (5) bring an empty or older target to the backup's revision; (6) one
write transaction: when the target's schema is NEWER than the backup's (a rollback after a deploy that
migrated), drop every table and rebuild the schema at the backup's revision; else delete every row
(children first); insert every row (parents first) in batches, re-checking checksums as it reads,
reset PostgreSQL sequences, check the counts, commit; (7) upgrade to this code's head when the backup
was older. Any failure in (6) rolls everything back, the schema change included (DDL is transactional
on both SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from sqlalchemy import MetaData, Table, delete, text
from sqlalchemy.exc import SAWarning
from sqlalchemy.orm import Session

from subbot.ops.backup import (
    BackupError,
    BackupReader,
    Manifest,
    backup_database,
    default_backup_path,
    verify_backup,
)
from subbot.ops.data.codec import CodecError, tables
from subbot.ops.data.common import (
    DataToolError,
    Progress,
    count_rows,
    existing_tables,
    reset_sequences,
    revision_of,
    revision_order,
)
from subbot.ops.data.fastio import insert_rows, row_converter
from subbot.store.db import Database
from subbot.store.migrate import alembic_config, upgrade

INSERT_BATCH = 1000  # rows per executemany (SQLite)
PG_BATCH = 10_000  # rows per COPY (PostgreSQL): fewer round trips, same flat memory
loads = json.JSONDecoder().decode


@dataclass
class RestorePlan:
    """What is about to happen, shown to the operator before they confirm."""

    backup: Path
    manifest: Manifest
    database_revision: str | None
    current_rows: dict[str, int] | None  # None: the database has no schema yet
    migrate_to: str | None  # revision the target is brought to before the restore
    recreate: bool = False  # the target's schema is newer than the backup's: drop and rebuild it

    @property
    def current_total(self) -> int:
        return sum((self.current_rows or {}).values())


@dataclass
class RestoreResult:
    manifest: Manifest
    safety_backup: Path | None
    rows: dict[str, int] = field(default_factory=dict)
    final_revision: str | None = None


def _check_tables(manifest: Manifest) -> dict[str, Table]:
    known = {t.name: t for t in tables()}
    for name, info in manifest.tables.items():
        table = known.get(name)
        if table is None:
            raise BackupError(f"the backup holds table {name!r}, which this version of subbot does not know")
        missing = [c for c, _ in info.columns if c not in table.columns]
        if missing:
            raise BackupError(
                f"the backup's table {name} has columns this version lacks: {', '.join(missing)}"
            )
    return known


async def plan_restore(db: Database, path: Path, progress: Progress | None = None) -> RestorePlan:
    """Verify the file and the revisions; raises :class:`DataToolError` when the restore must not run."""
    manifest = verify_backup(path, progress)
    _check_tables(manifest)
    order = revision_order()
    wanted = manifest.schema_revision
    if wanted is None:
        raise BackupError(f"backup {path} was taken from a database without a schema revision")
    if wanted not in order:
        raise BackupError(
            f"backup {path} is at schema revision {wanted}, newer than (or unknown to) this version of "
            f"subbot (head {order[-1]}); restore it with the version of subbot that made it"
        )
    async with db.engine.connect() as conn:
        current = await revision_of(conn)
        present = await existing_tables(conn)
        counts = None if current is None else {t.name: await count_rows(conn, t) for t in present}
    plan = RestorePlan(path, manifest, current, counts, None)
    if current is None or (current in order and order.index(current) < order.index(wanted)):
        plan.migrate_to = wanted  # empty or older: plain forward migrations first
    elif current not in order or order.index(current) > order.index(wanted):
        # e.g. a rollback: newer code migrated the schema, the backup was taken before. The schema is
        # dropped and rebuilt at the backup's revision inside the restore's own transaction.
        plan.recreate = True
    return plan


async def restore_database(
    db: Database,
    path: Path,
    *,
    confirm: Callable[[RestorePlan], bool],
    safety_dir: Path | None = Path("backups"),
    progress: Progress | None = None,
    batch: int | None = None,
    on_safety_backup: Callable[[Path], None] | None = None,
) -> RestoreResult:
    plan = await plan_restore(db, path, progress)
    if not confirm(plan):
        raise DataToolError("restore cancelled; nothing was changed")
    result = RestoreResult(plan.manifest, None)
    if plan.current_rows is not None and safety_dir is not None:
        result.safety_backup = default_backup_path(safety_dir, "pre-restore")
        await backup_database(db, result.safety_backup, progress=progress)
        if on_safety_backup:
            on_safety_backup(result.safety_backup)
    if plan.migrate_to is not None:
        await upgrade(db, plan.migrate_to)
    recreate_at = plan.manifest.schema_revision if plan.recreate else None
    result.rows = await _replace_all(db, path, plan.manifest, progress, batch, recreate_at)
    order = revision_order()
    assert plan.manifest.schema_revision is not None
    if order.index(plan.manifest.schema_revision) < len(order) - 1:
        await upgrade(db)
    async with db.engine.connect() as conn:
        result.final_revision = await revision_of(conn)
    return result


def _rebuild_schema(session: Session, revision: str) -> None:
    """Drop every table (whatever the schema) and migrate to ``revision``, in the caller's transaction."""
    conn = session.connection()
    found = MetaData()
    with warnings.catch_warnings():  # expression indexes are not reflected; they go with their table
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        found.reflect(conn)
    found.drop_all(conn)
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def _replace_all(
    db: Database,
    path: Path,
    manifest: Manifest,
    progress: Progress | None,
    batch: int | None,
    recreate_at: str | None = None,
) -> dict[str, int]:
    known = _check_tables(manifest)
    reader = BackupReader(path, batch or (PG_BATCH if db.dialect == "postgresql" else INSERT_BATCH))
    restored: dict[str, int] = {}
    async with db.write() as session:
        if recreate_at is not None:
            await session.run_sync(_rebuild_schema, recreate_at)
        all_tables = await existing_tables(await session.connection())
        if recreate_at is None and db.dialect == "postgresql":
            await session.execute(text("SET LOCAL lock_timeout = '60s'"))
            every = ", ".join(f'"{t.name}"' for t in all_tables)
            await session.execute(text(f"LOCK TABLE {every} IN ACCESS EXCLUSIVE MODE"))
        for table in reversed(all_tables):
            await session.execute(delete(table))
        for section in reader.sections():
            table = known[section.name]
            names = [c for c, _ in section.columns]
            convert = row_converter(db.dialect, [k for _, k in section.columns])
            total = manifest.tables[section.name].rows
            done = 0
            if progress:
                progress(f"restore {section.name}", 0, total)
            # the database works on one batch (its own thread or the server) while the next is decoded
            pending: asyncio.Future[None] | None = None
            try:
                for chunk in section.batches:
                    try:
                        rows = [convert(loads(line.decode("utf-8"))) for line in chunk]
                    except (CodecError, ValueError) as exc:
                        raise BackupError(f"backup {path}: bad row in table {section.name}: {exc}") from None
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(insert_rows(session, table, names, rows))
                    done += len(rows)
                    if progress:
                        progress(f"restore {section.name}", done, total)
                if pending is not None:
                    await pending
            except BaseException:
                if pending is not None and not pending.done():
                    pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)
                raise
            restored[section.name] = done
        await reset_sequences(session, all_tables)
        for table in all_tables:  # belt and braces: what is committed is exactly what the manifest says
            expected = manifest.tables[table.name].rows if table.name in manifest.tables else 0
            if await count_rows(session, table) != expected:
                raise DataToolError(f"table {table.name} does not hold {expected} rows after the restore")
    return restored
