"""Runbook: ``python scripts/production_tests.py --test admin`` / ``--all`` — test the live deployment.

Also importable, as the runbook's one-liner does::

    from scripts.production_tests import ProductionTestSuite
    suite = ProductionTestSuite(); asyncio.run(suite.initialize())   # settings + database, no network call

See ``subbot.ops.production_tests`` for the tests and their exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python scripts/x.py` from anywhere

from subbot.ops.production_tests import TEST_NAMES, ProductionTestSuite, TestResult, main

__all__ = ["TEST_NAMES", "ProductionTestSuite", "TestResult", "main"]

if __name__ == "__main__":
    sys.exit(main())
