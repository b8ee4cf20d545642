"""Checks of our own HTTP server: /health (what Telegram and Airwallex reach) and the dashboard."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from subbot.ops.monitoring.base import (
    CheckResult,
    Findings,
    Probe,
    Severity,
    Status,
    critical,
    describe_error,
    unknown,
)
from subbot.store.models import AdminLoginAttempt

SLOW_S = 2.0
# Lockout stops one name after 5 failures and one address after 20 (docs/dashboard.md): 20 failures in
# 10 minutes means several names or addresses are being tried at once.
BREACH_FAILED_LOGINS = 20
BREACH_WINDOW = timedelta(minutes=10)


async def check_webhook(probe: Probe) -> CheckResult:
    url = probe.app_base + "/health"
    started = time.perf_counter()
    try:
        response = await probe.http.get(url, timeout=10.0)
    except Exception as exc:
        where = (
            "Telegram and Airwallex cannot reach us" if probe.settings.public_url else "is `subbot run` up?"
        )
        return critical("webhook", f"{url} unreachable ({describe_error(exc)}): {where}", url=url)
    elapsed = time.perf_counter() - started
    ms = round(elapsed * 1000, 1)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        return critical(
            "webhook", f"{url} answered HTTP {response.status_code} without a health report", url=url
        )
    found = Findings("webhook")
    found.details.update(url=url, http_status=response.status_code, reported=body.get("status"))
    components = body.get("components") or {}
    bad = sorted(
        name
        for name, comp in components.items()
        if isinstance(comp, dict) and comp.get("status") not in (None, "ok", "unknown")
    )
    if body.get("status") == "down" or response.status_code >= 500:
        found.add(
            Status.CRITICAL, Severity.SEV1, f"the server reports down ({', '.join(bad) or 'no detail'})"
        )
    elif body.get("status") == "degraded":
        found.add(
            Status.DEGRADED, Severity.SEV3, f"the server reports degraded ({', '.join(bad) or 'no detail'})"
        )
    if elapsed > SLOW_S:
        found.add(Status.DEGRADED, Severity.SEV2, f"/health took {elapsed:.1f} s")
    return found.result(f"/health ok in {ms:.0f} ms (version {body.get('version')})", ms)


async def check_dashboard(probe: Probe) -> CheckResult:
    """The login page answers 200 (SEV-2 when not: the runbook's "dashboard inaccessible"), and failed
    admin logins read from the database: BREACH_FAILED_LOGINS or more within BREACH_WINDOW is SEV-1."""
    url = probe.app_base + "/dashboard/login"
    found = Findings("dashboard")
    found.details["url"] = url
    failures = await _failed_logins(probe, found)
    try:
        response = await probe.http.get(url, timeout=10.0)
    except Exception as exc:
        if found.problems:
            return found.result("")
        return unknown(
            "dashboard", f"server unreachable ({describe_error(exc)}); see the webhook check", **found.details
        )
    found.details["http_status"] = response.status_code
    if response.status_code == 404 and not found.problems:
        return unknown("dashboard", "not deployed", **found.details)
    if response.status_code != 200:
        found.add(Status.DEGRADED, Severity.SEV2, f"{url} answered HTTP {response.status_code}")
    counted = "" if failures is None else f"; {failures} failed logins in {_minutes(BREACH_WINDOW)} min"
    return found.result(f"login page answered HTTP 200{counted}")


def _minutes(window: timedelta) -> int:
    return int(window.total_seconds() // 60)


async def _failed_logins(probe: Probe, found: Findings) -> int | None:
    """Failed (and locked-out) dashboard logins in the window, from the database every instance shares."""
    if probe.db_error:
        found.details["failed_logins"] = "unavailable (database down)"
        return None
    since = probe.clock.now() - BREACH_WINDOW

    async def count() -> int:
        async with probe.database().sessions() as session:
            n = await session.scalar(
                select(func.count())
                .select_from(AdminLoginAttempt)
                .where(AdminLoginAttempt.at >= since, AdminLoginAttempt.outcome != "ok")
            )
        return int(n or 0)

    try:
        failures, _ = await probe.timed(count)
    except Exception as exc:  # a database behind this code has no admin_login_attempts table yet
        found.details["failed_logins"] = f"unavailable ({describe_error(exc)})"
        return None
    found.details["failed_logins"] = failures
    if failures >= BREACH_FAILED_LOGINS:
        found.add(
            Status.CRITICAL,
            Severity.SEV1,
            f"signs of a breach: {failures} failed admin logins in the last {_minutes(BREACH_WINDOW)} min "
            "(see the audit log: dashboard_login_failed)",
        )
    return failures
