"""The monitor's dashboard check: the login page answers, and failed admin logins are a breach signal."""

from __future__ import annotations

from datetime import timedelta

from subbot.ops.checks import CheckResult, Severity, Status
from subbot.ops.monitor import Monitor
from subbot.ops.monitoring.http_checks import BREACH_FAILED_LOGINS
from subbot.store.models import AdminLoginAttempt
from tests.e2e import conftest as e2e
from tests.e2e.conftest import World
from tests.web.dashboard.conftest import Site, SiteFactory

world = e2e.world  # the Telegram sandbox and the real process, on both databases


async def dashboard_check(site: Site) -> CheckResult:
    async with Monitor(site.app.settings, clock=site.clock, alerts=False) as monitor:
        (result,) = await monitor.check(["dashboard"])
    return result


async def failures(site: Site, count: int, ago: timedelta) -> None:
    at = site.clock.now() - ago
    async with site.app.db.write() as session:
        for n in range(count):
            session.add(AdminLoginAttempt(at=at, username=f"guess{n}", ip="203.0.113.9", outcome="failed"))


async def test_many_failed_logins_are_a_sev1_breach_signal(make_site: SiteFactory) -> None:
    site = await make_site(port=e2e.free_port())  # nothing listens there
    quiet = await dashboard_check(site)
    assert quiet.status is Status.UNKNOWN and quiet.details["failed_logins"] == 0
    await failures(site, BREACH_FAILED_LOGINS, ago=timedelta(minutes=11))  # outside the window
    await failures(site, BREACH_FAILED_LOGINS - 1, ago=timedelta(minutes=5))
    below = await dashboard_check(site)
    assert below.status is Status.UNKNOWN and below.details["failed_logins"] == 19
    await failures(site, 1, ago=timedelta(minutes=1))
    breach = await dashboard_check(site)
    assert breach.status is Status.CRITICAL and breach.severity is Severity.SEV1
    assert "signs of a breach: 20 failed admin logins" in breach.summary


async def test_the_running_dashboard_is_ok(world: World) -> None:
    async with world.serving() as (app, _base):
        async with Monitor(app.settings, clock=world.clock, alerts=False) as monitor:
            (result,) = await monitor.check(["dashboard"])
    assert result.status is Status.OK, result.summary
    assert result.summary == "login page answered HTTP 200; 0 failed logins in 10 min"
