"""The monitor's checks by name, and running a set of them (database first, the rest concurrently)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from subbot.ops.monitoring.base import (
    CheckResult,
    Probe,
    Severity,
    Status,
    describe_error,
    exit_code,
    worst,
)
from subbot.ops.monitoring.db_checks import check_automation, check_database, check_payment
from subbot.ops.monitoring.http_checks import check_dashboard, check_webhook
from subbot.ops.monitoring.resources import check_resources
from subbot.ops.monitoring.telegram_checks import check_admin, check_bot

__all__ = [
    "ALL_CHECKS",
    "CHECKS",
    "CheckResult",
    "Probe",
    "Severity",
    "Status",
    "exit_code",
    "expand",
    "run_checks",
    "worst",
]

log = logging.getLogger(__name__)
Check = Callable[[Probe], Awaitable[CheckResult]]

CHECKS: dict[str, Check] = {
    "bot": check_bot,
    "database": check_database,
    "payment": check_payment,
    "webhook": check_webhook,
    "admin": check_admin,
    "dashboard": check_dashboard,
    "automation": check_automation,
    "resources": check_resources,
}
ALL_CHECKS = tuple(CHECKS)
CHECK_TIMEOUT = 20.0  # no single check may hold a monitor pass longer than this


def expand(names: Iterable[str]) -> list[str]:
    """Check names in a stable order; ``all`` means every check. Unknown names raise ``ValueError``."""
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted.update(ALL_CHECKS)
        elif name in CHECKS:
            wanted.add(name)
        else:
            raise ValueError(f"unknown check {name!r}; checks: {', '.join((*ALL_CHECKS, 'all'))}")
    return [n for n in ALL_CHECKS if n in wanted]


async def _guarded(name: str, probe: Probe) -> CheckResult:
    try:
        return await asyncio.wait_for(CHECKS[name](probe), CHECK_TIMEOUT)
    except TimeoutError:
        return CheckResult(
            name, Status.CRITICAL, f"the check did not finish in {CHECK_TIMEOUT:g} s", Severity.SEV1
        )
    except Exception as exc:  # a bug in a check is reported, never fatal to the monitor
        log.exception("check %s crashed", name)
        return CheckResult(
            name, Status.DEGRADED, f"the check itself failed: {describe_error(exc)}", Severity.SEV3
        )


async def run_checks(probe: Probe, names: Iterable[str]) -> list[CheckResult]:
    """Run the named checks. The database goes first: when it is down, checks that need it are skipped."""
    ordered = expand(names)
    probe.db_error = None
    results: dict[str, CheckResult] = {}
    if "database" in ordered:
        results["database"] = await _guarded("database", probe)
    rest = [n for n in ordered if n != "database"]
    for name, result in zip(rest, await asyncio.gather(*(_guarded(n, probe) for n in rest)), strict=True):
        results[name] = result
    return [results[n] for n in ordered]
