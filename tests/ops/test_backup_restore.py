"""Backup and restore: round trips on both backends and across them, damage refused, all-or-nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy import inspect as sa_inspect

from subbot.ops.backup import BackupError, BackupReader, BackupWriter, backup_database, sidecar, verify_backup
from subbot.ops.data.common import DataToolError
from subbot.ops.restore import RestorePlan, restore_database
from subbot.services.context import ServiceContext
from subbot.store.db import Database, create_database
from subbot.store.migrate import head_revision, upgrade
from subbot.store.models import Payment, User
from tests.conftest import PG_DSN, postgres_or_skip
from tests.ops import data_helpers
from tests.ops.data_helpers import START, dump, make_ctx, pay, seed_world

seeded = data_helpers.seeded  # fixture
REPO = Path(__file__).resolve().parents[2]


def yes(_plan: RestorePlan) -> bool:
    return True


async def test_round_trip_is_identical(seeded: ServiceContext, tmp_path: Path) -> None:
    db = seeded.db
    before = await dump(db)
    assert all(before.values()), [name for name, rows in before.items() if not rows]
    path = tmp_path / "b.jsonl.gz"
    manifest = await backup_database(db, path)
    assert manifest.schema_revision == head_revision()
    assert manifest.backend == db.dialect
    assert {n: t.rows for n, t in manifest.tables.items()} == {n: len(r) for n, r in before.items()}
    assert sidecar(path).read_text().split()[0] == manifest.file_sha256
    # change everything, then restore
    await pay(seeded, 1003, "charge-after")
    async with db.write() as s:
        (await s.get(User, 1001)).first_name = "changed"  # type: ignore[union-attr]
    assert await dump(db) != before
    result = await restore_database(db, path, confirm=yes, safety_dir=tmp_path / "safety")
    assert await dump(db) == before
    assert result.safety_backup is not None and result.safety_backup.is_file()
    assert verify_backup(result.safety_backup).tables["payments"].rows == 3
    # sequences continue after the restored ids
    await pay(seeded, 1003, "charge-after-restore")
    async with db.sessions() as s:
        ids = sorted((await s.scalars(select(Payment.id))).all())
    assert ids == [1, 2, 3]


async def test_backup_twice_gives_identical_checksums(seeded: ServiceContext, tmp_path: Path) -> None:
    first = await backup_database(seeded.db, tmp_path / "1.jsonl.gz")
    second = await backup_database(seeded.db, tmp_path / "2.jsonl.gz")
    assert {n: t.sha256 for n, t in first.tables.items()} == {n: t.sha256 for n, t in second.tables.items()}


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    postgres_or_skip()
    name = f"subbot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_cross_backend_postgres_to_sqlite_and_back(pg_url: str, tmp_path: Path) -> None:
    pg = create_database(pg_url)
    lite = create_database(f"sqlite+aiosqlite:///{tmp_path}/lite.db")
    try:
        await upgrade(pg)
        await seed_world(make_ctx(pg))
        original = await dump(pg)
        await backup_database(pg, tmp_path / "pg.jsonl.gz")
        # into an EMPTY SQLite database: migrated first, no safety backup needed
        result = await restore_database(lite, tmp_path / "pg.jsonl.gz", confirm=yes, safety_dir=tmp_path)
        assert result.safety_backup is None and result.final_revision == head_revision()
        assert await dump(lite) == original
        # and back: SQLite backup into a PostgreSQL database holding other data
        await backup_database(lite, tmp_path / "lite.jsonl.gz")
        await pay(make_ctx(pg), 1003, "pg-only")
        result = await restore_database(pg, tmp_path / "lite.jsonl.gz", confirm=yes, safety_dir=tmp_path)
        assert result.safety_backup is not None
        assert await dump(pg) == original
        await pay(make_ctx(pg), 1003, "after-restore")  # the payments sequence was reset
    finally:
        await pg.dispose()
        await lite.dispose()


def _flip_byte(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage", ["flip-middle", "flip-end", "truncate", "truncate-no-sidecar", "flip-no-sidecar", "not-gzip"]
)
async def test_damaged_backup_is_refused_and_nothing_changes(
    seeded: ServiceContext, tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "b.jsonl.gz"
    await backup_database(seeded.db, path)
    await pay(seeded, 1003, "later")
    before = await dump(seeded.db)
    if damage.startswith("flip"):
        _flip_byte(path, 0.5 if damage != "flip-end" else 0.999)
    elif damage.startswith("truncate"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    else:
        path.write_bytes(b"hello")
    if damage.endswith("no-sidecar") or damage == "not-gzip":
        sidecar(path).unlink()
    with pytest.raises(BackupError, match=r"damaged|truncated|not a subbot backup"):
        await restore_database(seeded.db, path, confirm=yes, safety_dir=tmp_path / "safety")
    assert await dump(seeded.db) == before
    assert not (tmp_path / "safety").exists()  # refused before anything, even the safety backup


async def test_internal_checksums_catch_a_consistently_rewritten_file(
    seeded: ServiceContext, tmp_path: Path
) -> None:
    """A row edited and recompressed (gzip CRC valid, no sidecar) is still refused by the manifest."""
    path = tmp_path / "b.jsonl.gz"
    await backup_database(seeded.db, path)
    text = gzip.decompress(path.read_bytes()).decode()
    assert '"alice"' in text
    path.write_bytes(gzip.compress(text.replace('"alice"', '"mallory"').encode()))
    sidecar(path).unlink()
    with pytest.raises(BackupError, match="checksum"):
        verify_backup(path)


async def test_restore_is_all_or_nothing(seeded: ServiceContext, tmp_path: Path) -> None:
    """A valid file whose payments table violates the unique constraint: the restore rolls back."""
    db = seeded.db
    good = tmp_path / "good.jsonl.gz"
    await backup_database(db, good)
    bad = tmp_path / "bad.jsonl.gz"
    reader = BackupReader(good)
    writer = BackupWriter(bad, revision=head_revision(), backend="test", expected={})
    for section in reader.sections():
        writer.begin_table(section.name, section.columns)
        for chunk in section.batches:
            lines = list(chunk)
            if section.name == "payments":  # a second row with another id but the same provider id
                row = json.loads(lines[0])
                row[0] = 999
                lines.append((json.dumps(row) + "\n").encode())
            writer.write_lines(lines)
        writer.end_table()
    writer.close()
    verify_backup(bad)  # the file itself is fine
    await pay(seeded, 1003, "later")
    before = await dump(db)
    with pytest.raises(Exception, match=r"(?i)unique"):
        await restore_database(db, bad, confirm=yes, safety_dir=tmp_path / "safety")
    assert await dump(db) == before
    assert len(list((tmp_path / "safety").iterdir())) == 2  # the safety backup and its sidecar


async def test_failure_mid_restore_rolls_back(seeded: ServiceContext, tmp_path: Path) -> None:
    db = seeded.db
    path = tmp_path / "b.jsonl.gz"
    await backup_database(db, path)
    await pay(seeded, 1003, "later")
    before = await dump(db)

    def boom(label: str, done: int, total: int | None) -> None:
        if label == "restore subscriptions" and done > 0:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected"):
        await restore_database(db, path, confirm=yes, safety_dir=tmp_path, progress=boom)
    assert await dump(db) == before


async def test_refusals(seeded: ServiceContext, tmp_path: Path) -> None:
    db = seeded.db
    path = tmp_path / "b.jsonl.gz"
    await backup_database(db, path)
    before = await dump(db)
    with pytest.raises(DataToolError, match="cancelled"):
        await restore_database(db, path, confirm=lambda plan: False, safety_dir=tmp_path / "s")
    # a backup from a newer version of the code
    text = gzip.decompress(path.read_bytes()).decode().replace(head_revision(), "ffffffffffff")
    newer = tmp_path / "newer.jsonl.gz"
    newer.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(BackupError, match="newer"):
        await restore_database(db, newer, confirm=yes, safety_dir=tmp_path / "s")
    with pytest.raises(BackupError, match="does not exist"):
        await restore_database(db, tmp_path / "missing.jsonl.gz", confirm=yes, safety_dir=tmp_path / "s")
    assert await dump(db) == before
    assert not (tmp_path / "s").exists()


async def test_streaming_keeps_memory_flat(db: Database, tmp_path: Path) -> None:
    """20,000 rows back up and restore with about the memory of 2,000 (batches, not the whole table)."""
    import tracemalloc

    ctx = make_ctx(db)
    await seed_world(ctx)

    async def add_users(n: int, base: int) -> None:
        async with db.write() as s:
            rows = [
                {"id": base + i, "first_name": f"user {i}" * 5, "username": f"u{i}", "is_whitelisted": False,
                 "created_at": START, "updated_at": START}
                for i in range(n)
            ]  # fmt: skip
            await s.execute(insert(User), rows)

    async def peaks(label: str) -> tuple[int, int]:
        path = tmp_path / f"{label}.jsonl.gz"
        tracemalloc.start()
        await backup_database(db, path, batch=500)
        backup_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        await restore_database(db, path, confirm=yes, safety_dir=None, batch=500)
        restore_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return backup_peak, restore_peak

    await add_users(2_000, 10_000_000)
    small = await peaks("small")
    await add_users(18_000, 20_000_000)
    big = await peaks("big")
    assert big[0] < small[0] * 2 + 1_000_000, (small, big)
    assert big[1] < small[1] * 2 + 1_000_000, (small, big)
    async with db.sessions() as s:
        assert len((await s.scalars(select(User.id))).all()) == 20_004


async def test_runbook_commands_verbatim(tmp_path: Path) -> None:
    """The incident-response plan's commands, exactly as written, as an operator runs them.

    They run with cwd = a temporary directory holding a ``scripts`` symlink to the repository's, so
    ``python scripts/x.py`` is verbatim while the default ``backups/`` and ``exports/`` land in the
    temporary directory (the defaults are relative to the current directory); ``python`` is the venv's
    (its bin first on PATH, as with an activated venv); DATABASE_URL points at a temporary SQLite file.
    """
    import os
    import subprocess
    import sys

    (tmp_path / "scripts").symlink_to(REPO / "scripts")
    db_file = tmp_path / "subbot.db"
    db = create_database(f"sqlite+aiosqlite:///{db_file}")
    await upgrade(db)
    ctx = make_ctx(db, datetime.now(UTC))  # the scripts check the data against the real clock
    await seed_world(ctx)
    original = await dump(db)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    env |= {"DATABASE_URL": f"sqlite:///{db_file}", "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}

    def run(command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command.split(), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
            input=stdin, check=False,
        )  # fmt: skip

    backup = run("python scripts/backup_database.py")
    assert backup.returncode == 0, backup.stderr
    [filename] = [str(p.relative_to(tmp_path)) for p in (tmp_path / "backups").glob("*.jsonl.gz")]
    assert filename in backup.stdout

    await pay(ctx, 1003, "after-the-backup")
    changed = await dump(db)
    refused = run(f"python scripts/restore_database.py --backup-file {filename}", stdin="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert await dump(db) == changed
    restored = run(f"python scripts/restore_database.py --backup-file {filename} --yes")
    assert restored.returncode == 0, restored.stderr
    assert "safety backup of the current database: backups/pre-restore-" in restored.stdout
    assert await dump(db) == original

    export = run("python scripts/export_critical_data.py")
    assert export.returncode == 0, export.stderr
    [exported] = (tmp_path / "exports").glob("critical-*.json")

    verify = run("python scripts/verify_data_integrity.py")
    assert verify.returncode == 0 and "clean" in verify.stdout, verify.stdout + verify.stderr

    (tmp_path / "backup.json").write_bytes(exported.read_bytes())
    imported = run("python scripts/import_data.py --file backup.json")
    assert imported.returncode == 0, imported.stderr
    assert "users" in imported.stdout and await dump(db) == original  # everything unchanged
    await db.dispose()


async def test_restore_over_a_newer_schema_rebuilds_it(seeded: ServiceContext, tmp_path: Path) -> None:
    """The runbook's rollback: newer code migrated the schema after the backup; restore brings it back."""
    db = seeded.db
    path = tmp_path / "pre-deploy.jsonl.gz"
    await backup_database(db, path)
    before = await dump(db)
    async with db.write() as s:  # what a future migration might have done
        await s.execute(text("CREATE TABLE future_things (id INTEGER PRIMARY KEY, note TEXT)"))
        await s.execute(text("ALTER TABLE users ADD COLUMN nickname VARCHAR(32)"))
        await s.execute(text("UPDATE alembic_version SET version_num = 'f00dfuture0001'"))
    await pay(seeded, 1003, "after-deploy")
    result = await restore_database(db, path, confirm=yes, safety_dir=tmp_path / "safety")
    assert result.safety_backup is not None and result.final_revision == head_revision()
    assert await dump(db) == before
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa_inspect(c).get_table_names())
        columns = await conn.run_sync(lambda c: [col["name"] for col in sa_inspect(c).get_columns("users")])
    assert "future_things" not in names and "nickname" not in columns
    await pay(seeded, 1003, "after-restore")  # the app works on the rebuilt schema
