"""Runbook: ``python scripts/backup_database.py [--output PATH] [--database-url URL]``.

A consistent, compressed, checksummed backup of every table (default ``backups/subbot-<UTC time>.jsonl.gz``
under the current directory, with a ``.sha256`` sidecar). Same as ``subbot data backup``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subbot.ops.data.commands import run_backup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Back up every table to a compressed, checksummed file.")
    parser.add_argument(
        "--output", type=Path, help="backup file to write (default backups/subbot-<time>.jsonl.gz)"
    )
    parser.add_argument("--database-url", help="database to back up (default DATABASE_URL)")
    args = parser.parse_args(argv)
    return run_backup(args.output, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
