"""Production tests of a live deployment (the runbook's ``scripts/production_tests.py``).

``--test bot|database|subscription|payment|admin|error|load|webhook``, ``--all``, ``--report FILE``.
Every test is read-only, or writes rows marked as test rows inside a transaction that is rolled back;
none creates a payment, sends a message or changes the webhook.  The code lives in
:mod:`subbot.ops.prodtests`: ``core`` (suite, results, reports), ``telegram_checks`` (bot, admin),
``data_checks`` (database, subscription, payment), ``http_checks`` (error, load, webhook), ``cli``.
"""

from subbot.ops.prodtests.cli import main
from subbot.ops.prodtests.core import TEST_NAMES, ProductionTestSuite, Status, TestResult

__all__ = ["TEST_NAMES", "ProductionTestSuite", "Status", "TestResult", "main"]
