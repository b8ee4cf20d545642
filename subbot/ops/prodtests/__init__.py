"""Production tests: read-only (or rolled-back) checks of a live deployment; see ops.production_tests."""

from subbot.ops.prodtests.core import TEST_NAMES, ProductionTestSuite, Status, TestResult

__all__ = ["TEST_NAMES", "ProductionTestSuite", "Status", "TestResult"]
