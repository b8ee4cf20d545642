"""Backup and restore (issue 5): rows/s and peak RSS of ``subbot.ops`` backup and restore at N rows.

``python -m bench backup [--rows 100000] [--backends sqlite,postgres] [--json PATH]``

For each backend: a fresh database migrated with our migrations is filled with ``--rows`` rows, a fifth
each in users, orders, payments, subscriptions and audit_log (JSON details), FK-consistent. Then, each in
its own child process (so peak RSS is that operation's alone, imports included):

* **backup**: ``backup_database`` to a ``.jsonl.gz`` file (one snapshot, streamed, checksummed);
* **restore**: ``restore_database`` of that file into a second database of the same backend, migrated
  (not timed) but empty: the full verification pass, then the one-transaction reload (delete, insert
  in batches, sequences, row counts). No safety backup (the target is empty).

Reported: wall seconds, rows/s, the child's CPU seconds (user + system, all threads: less sensitive
to a busy machine than wall time), peak RSS (``VmHWM`` of the child), file size. Checks: the restored
database holds exactly the same number of rows per table, or the run exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Only what the child needs at the top: its peak RSS must be the operation's, not the benchmark's.
from subbot.ops.data.codec import column_kind, tables
from subbot.ops.data.common import count_rows
from subbot.ops.data.fastio import insert_rows, row_converter
from subbot.store.db import Database, create_database
from subbot.store.models import AuditEntry, Order, Payment, Subscription, User

REPO = Path(__file__).resolve().parent.parent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows_for(n: int) -> dict[Any, list[list[Any]]]:
    """JSON-form rows (as in a backup) for each table, in FK order."""
    per = max(1, n // 5)
    iso = (T0 + timedelta(seconds=1)).isoformat()
    users = [[10_000 + i, f"user{i}", f"First {i}", None, "en", False, None, iso, iso] for i in range(per)]
    orders = [
        [f"o{i:010d}", 10_000 + i, "standard", "stars", 250, "XTR", "paid", None, iso, iso, iso]
        for i in range(per)
    ]
    payments = [
        [i + 1, f"o{i:010d}", 10_000 + i, "stars", f"charge-{i}", 250, "XTR", "succeeded", iso, None, 0]
        for i in range(per)
    ]
    ends = (T0 + timedelta(days=30)).isoformat()
    subs = [
        [i + 1, 10_000 + i, "standard", iso, ends, "active", "payment", f"o{i:010d}", None, iso, iso]
        for i in range(per)
    ]
    audit = [
        [i + 1, iso, "system", "grant", 10_000 + i, {"order": f"o{i:010d}", "days": 30}] for i in range(per)
    ]
    return {User: users, Order: orders, Payment: payments, Subscription: subs, AuditEntry: audit}


async def fill(db: Database, n: int) -> int:
    from subbot.domain.plans import load_plans
    from subbot.store import plans as plan_store

    plans = load_plans(None, (-1001,))
    async with db.write() as session:
        await plan_store.sync(session, plans, T0)
    total = 0
    for model, rows in _rows_for(n).items():
        table = model.__table__
        columns = [c.name for c in table.columns]
        convert = row_converter(db.dialect, [column_kind(c) for c in table.columns])
        async with db.write() as session:
            for start in range(0, len(rows), 5000):
                await insert_rows(
                    session, table, columns, [convert(list(r)) for r in rows[start : start + 5000]]
                )
        total += len(rows)
    return total


async def counts(url: str) -> dict[str, int]:
    db = create_database(url)
    try:
        async with db.engine.connect() as conn:
            return {t.name: await count_rows(conn, t) for t in tables()}
    finally:
        await db.dispose()


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would include the forking parent's, kept across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(argv: Sequence[str]) -> int:
    """``--child backup|restore URL FILE``: one operation, timed, in a fresh interpreter."""
    phase, url, file = argv
    from subbot.ops.backup import backup_database
    from subbot.ops.restore import restore_database

    async def go() -> dict[str, Any]:
        db = create_database(url)
        try:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu0 = usage.ru_utime + usage.ru_stime
            start = time.perf_counter()
            if phase == "backup":
                manifest = await backup_database(db, Path(file))
                rows = manifest.total_rows
            else:
                result = await restore_database(db, Path(file), confirm=lambda _plan: True, safety_dir=None)
                rows = sum(result.rows.values())
            seconds = time.perf_counter() - start
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0, "rows": rows}
        finally:
            await db.dispose()

    out = asyncio.run(go())
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))
    return 0


def _run_child(phase: str, url: str, file: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.backup", "--child", phase, url, str(file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        from bench.procs import BenchError

        raise BenchError(f"{phase} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def bench_backend(backend: str, rows: int, workdir: Path) -> dict[str, Any]:
    from bench.dbs import fresh_database, migrated
    from bench.procs import BenchError

    async with (
        fresh_database(backend, workdir, "source") as src_url,
        fresh_database(backend, workdir, "target") as dst_url,
    ):
        db = await migrated(src_url)
        try:
            start = time.perf_counter()
            total = await fill(db, rows)
            fill_s = time.perf_counter() - start
        finally:
            await db.dispose()
        await (await migrated(dst_url)).dispose()
        file = workdir / f"{backend}.jsonl.gz"
        backup = await asyncio.to_thread(_run_child, "backup", src_url, file)
        restore = await asyncio.to_thread(_run_child, "restore", dst_url, file)
        before, after = await counts(src_url), await counts(dst_url)
        if before != after:
            raise BenchError(f"{backend}: restored counts differ: {before} vs {after}")
    for phase in (backup, restore):
        phase["rows_per_s"] = phase["rows"] / phase["seconds"]
    return {
        "backend": backend,
        "rows": total,
        "fill_seconds": fill_s,
        "file_bytes": file.stat().st_size,
        "backup": backup,
        "restore": restore,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench backup", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    from bench.procs import BenchError
    from bench.webhook_ingest import machine

    results: dict[str, Any] = {"machine": machine(), "runs": []}
    try:
        with tempfile.TemporaryDirectory(prefix="subbot-bench-backup-") as tmp:
            for backend in args.backends.split(","):
                run = asyncio.run(bench_backend(backend.strip(), args.rows, Path(tmp)))
                results["runs"].append(run)
                for phase in ("backup", "restore"):
                    p = run[phase]
                    print(
                        f"{run['backend']:<9} {phase:<8} {run['rows']:>9,} rows  {p['seconds']:7.1f} s  "
                        f"{p['rows_per_s']:>9,.0f} rows/s  CPU {p['cpu_seconds']:6.1f} s  "
                        f"peak RSS {p['peak_rss_mb']:6.1f} MB"
                        + (f"  file {run['file_bytes'] / 1e6:.1f} MB" if phase == "backup" else "")
                    )
    except BenchError as exc:
        print(f"backup benchmark failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
