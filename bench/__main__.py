"""``python -m bench [NAME [ARGS...]]``: run every registered benchmark, or one with its own options.

A benchmark is a module in this package exposing ``main(argv: list[str]) -> int``; register it in
:data:`BENCHMARKS` under a short name. ``python -m bench --list`` shows them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    module: str  # inside the ``bench`` package
    summary: str


BENCHMARKS: dict[str, Benchmark] = {
    "webhook": Benchmark(
        "webhook_ingest", "Webhook ingest: /start updates/s and latency, subbot vs bare aiogram (issue 2)"
    ),
    "airwallex": Benchmark(
        "airwallex_webhook", "Airwallex webhook: signed payment events/s, latency, duplicates (issue 3)"
    ),
    "expiry": Benchmark(
        "expiry", "Expiry at scale: removals/s vs Telegram's limits and bare aiogram, due queries (issue 4)"
    ),
    "monitor": Benchmark("monitor", "Monitor: --full-check wall time, demo-like environment (issue 5)"),
    "backup": Benchmark("backup", "Backup and restore: rows/s and peak RSS, SQLite and PostgreSQL (issue 5)"),
    "dashboard": Benchmark(
        "dashboard", "Dashboard: member search and list at 100k members, overview, CSV export (issue 6)"
    ),
}


def run_one(name: str, argv: Sequence[str]) -> int:
    module = importlib.import_module(f"bench.{BENCHMARKS[name].module}")
    code: int = module.main(list(argv))
    return code


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in ("-h", "--help", "--list"):
        if argv[0] != "--list":
            print(__doc__.strip(), file=sys.stderr)
        for name, bench in BENCHMARKS.items():
            print(f"  {name:<10} {bench.summary}")
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        return run_one(name, rest)
    failed = [name for name in BENCHMARKS if run_one(name, []) != 0]
    if failed:
        print(f"benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
