"""Runbook: ``python scripts/export_critical_data.py [--output FILE] [--database-url URL]``.

The data needed to rebuild access (plans, users, orders, payments, refunds, subscriptions, memberships)
as ONE JSON file, default ``exports/critical-<UTC time>.json``. No secrets. Same as ``subbot data export``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subbot.ops.data.commands import run_export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the data needed to rebuild access as one JSON file.")
    parser.add_argument("--output", type=Path, help="file to write (default exports/critical-<time>.json)")
    parser.add_argument("--database-url", help="database to export (default DATABASE_URL)")
    args = parser.parse_args(argv)
    return run_export(args.output, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
