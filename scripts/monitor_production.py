"""The runbook's monitor: ``python scripts/monitor_production.py --check bot|database|payment|… | --full-check
| --continuous --interval N [--no-alerts] [--json]``. Exit 0 healthy, 1 degraded, 2 critical.

Also importable: ``from scripts.monitor_production import ProductionMonitor``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``python scripts/x.py`` puts scripts/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from subbot.ops.monitor import Monitor, ProductionMonitor, main  # noqa: E402

__all__ = ["Monitor", "ProductionMonitor", "main"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="monitor_production.py"))
