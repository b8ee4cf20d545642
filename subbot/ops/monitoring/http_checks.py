"""Checks of our own HTTP server: /health (what Telegram and Airwallex reach) and the dashboard."""

from __future__ import annotations

import time

from subbot.ops.monitoring.base import (
    CheckResult,
    Findings,
    Probe,
    Severity,
    Status,
    critical,
    describe_error,
    ok,
    unknown,
)

SLOW_S = 2.0


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
    url = probe.app_base + "/dashboard/login"
    try:
        response = await probe.http.get(url, timeout=10.0)
    except Exception as exc:
        return unknown(
            "dashboard", f"server unreachable ({describe_error(exc)}); see the webhook check", url=url
        )
    if response.status_code == 404:
        return unknown("dashboard", "not deployed", url=url)
    if response.status_code >= 500:
        return CheckResult(
            "dashboard",
            Status.DEGRADED,
            f"{url} answered HTTP {response.status_code}",
            Severity.SEV2,
            details={"url": url},
        )
    return ok("dashboard", f"login page answered HTTP {response.status_code}", url=url)
