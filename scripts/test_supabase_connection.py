"""Runbook: ``python scripts/test_supabase_connection.py`` — test the database connection directly.

Prints the backend, latency, server version and schema revision; checks SUPABASE_SERVICE_KEY against
Supabase's REST endpoint when SUPABASE_URL is set.  Exit codes: see ``subbot.ops.supabase``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python scripts/x.py` from anywhere

if __name__ == "__main__":
    from subbot.ops.supabase import main

    sys.exit(main())
