"""Runbook: ``python scripts/import_data.py --file backup.json [--dry-run] [--database-url URL]``.

Imports a critical-data export (from export_critical_data.py) idempotently: upserts by natural keys,
bad records reported and skipped, a created/updated/unchanged/invalid report per table. ``--dry-run``
changes nothing. Same as ``subbot data import``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subbot.ops.data.commands import run_import


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import a critical-data export into this database.")
    parser.add_argument("--file", type=Path, required=True, help="the export (JSON) to import")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    parser.add_argument("--database-url", help="database to import into (default DATABASE_URL)")
    args = parser.parse_args(argv)
    return run_import(args.file, dry_run=args.dry_run, database_url=args.database_url)


if __name__ == "__main__":
    sys.exit(main())
