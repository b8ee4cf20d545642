"""Runbook: ``python scripts/restore_database.py --backup-file FILE [--yes] [--database-url URL]``.

Verifies the backup entirely first (a damaged or truncated file is refused, nothing changes), takes a
safety backup of the current database (``backups/pre-restore-<UTC time>.jsonl.gz``), asks (or ``--yes``;
without a terminal and without ``--yes`` it refuses), then replaces every row in ONE transaction.
Same as ``subbot data restore``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subbot.ops.data.commands import run_restore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Restore a backup made by backup_database.py.")
    parser.add_argument("--backup-file", type=Path, required=True, help="the .jsonl.gz backup to restore")
    parser.add_argument("--yes", action="store_true", help="do not ask before replacing the data")
    parser.add_argument("--database-url", help="database to restore into (default DATABASE_URL)")
    args = parser.parse_args(argv)
    return run_restore(args.backup_file, yes=args.yes, database_url=args.database_url)


if __name__ == "__main__":
    sys.exit(main())
