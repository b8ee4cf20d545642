"""Runbook: ``python scripts/verify_data_integrity.py [--fix] [--json] [--database-url URL]``.

Checks the data for inconsistencies (access without a source, payments without a subscription, members
in the group without access, duplicates, orphans, dead jobs, unapplied events, amount mismatches).
Exit 0 when clean, 1 with a report otherwise. ``--fix`` only requeues dead grant_access jobs that died
of transient errors for members who still have access. Same as ``subbot data verify``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subbot.ops.data.commands import run_verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check subbot's data for inconsistencies.")
    parser.add_argument(
        "--fix", action="store_true", help="perform the safe repairs (see docs/operations.md)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--database-url", help="database to check (default DATABASE_URL)")
    args = parser.parse_args(argv)
    return run_verify(fix=args.fix, as_json=args.json, database_url=args.database_url)


if __name__ == "__main__":
    sys.exit(main())
