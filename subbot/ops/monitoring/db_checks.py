"""Checks that read our database: database (reachable, migrated, fast), payment, automation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from subbot.ops.monitoring import queries
from subbot.ops.monitoring.base import (
    CheckResult,
    DatabaseUnavailable,
    Findings,
    Probe,
    Severity,
    Status,
    critical,
    describe_error,
    unknown,
)
from subbot.store.db import Database
from subbot.store.models import User

MIGRATIONS = Path(__file__).resolve().parents[2] / "store" / "migrations" / "versions"
_REVISION = re.compile(r'^revision\s*=\s*["\']([^"\']+)["\']', re.M)
_DOWN = re.compile(r'^down_revision\s*=\s*(["\']([^"\']+)["\']|None)', re.M)

SLOW_MS = 1000.0  # the original monitor: > 1 s degraded, 5 s timeout critical
TARGET_MS = 100.0  # the runbook's target for a query
MIN_ATTEMPTS_FOR_OUTAGE = 5  # 0 % success over at least this many attempts: payments are down
SUCCESS_SEV2 = 0.90  # the runbook: intermittent failures (> 10 %) are SEV-2
SUCCESS_TARGET = 0.95  # the runbook's target: > 95 %
REJECTED_BURST = 20  # rejected payment webhooks between two monitor passes that look like an attack


async def check_database(probe: Probe) -> CheckResult:
    result = await _database(probe)
    if result.status is Status.CRITICAL:
        probe.db_error = result.summary
    return result


def _known_revisions() -> tuple[str | None, set[str]]:
    """(head, every revision) read from the migration files: cheaper than importing Alembic (0.3 s).

    None as head when the history is not a simple line; the caller then asks Alembic.
    """
    revisions: dict[str, str | None] = {}
    for path in MIGRATIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is None or down is None:
            return None, set()
        revisions[rev.group(1)] = down.group(2)
    heads = set(revisions) - {d for d in revisions.values() if d}
    return (heads.pop() if len(heads) == 1 else None), set(revisions)


async def _schema(db: Database) -> tuple[str, str | None]:
    """("empty" | "behind" | "current" | "ahead", current revision)."""
    head, known = _known_revisions()
    if head is None:
        from subbot.store.migrate import schema_state

        state, rev = await schema_state(db)
        return state.value, rev
    async with db.sessions() as session:
        try:
            rev = await session.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return "empty", None
    if rev is None:
        return "empty", None
    rev = str(rev)
    return ("current" if rev == head else "behind" if rev in known else "ahead"), rev


async def _database(probe: Probe) -> CheckResult:
    timeout_s = probe.db_timeout
    try:
        db = probe.database()

        async def ping() -> None:
            async with db.sessions() as session:
                await session.execute(text("SELECT 1"))

        _, ping_ms = await probe.timed(ping)
        (state, rev), _ = await probe.timed(lambda: _schema(db))
    except DatabaseUnavailable as exc:
        return critical("database", str(exc))
    except TimeoutError:
        return critical("database", f"no answer within {timeout_s:g} s", timeout_s=timeout_s)
    except Exception as exc:
        return critical("database", f"unreachable: {describe_error(exc)}")
    if state in ("empty", "behind"):
        what = "has no schema" if state == "empty" else f"schema {rev} is not the latest"
        return critical("database", f"the database {what}: run `subbot migrate`", revision=rev)

    async def real_query() -> tuple[int, int]:
        async with db.sessions() as session:
            users = await session.scalar(select(func.count()).select_from(User))
            members = await queries.active_members(session, probe.clock.now())
        return int(users or 0), members

    try:
        (users, members), query_ms = await probe.timed(real_query)
    except TimeoutError:
        return critical("database", f"a query on our tables took over {timeout_s:g} s")
    except Exception as exc:
        return critical("database", f"query on our tables failed: {describe_error(exc)}")
    found = Findings("database")
    found.details.update(
        dialect=db.dialect,
        revision=rev,
        ping_ms=ping_ms,
        query_ms=query_ms,
        users=users,
        active_members=members,
    )
    if state == "ahead":
        found.add(Status.DEGRADED, Severity.SEV3, f"schema {rev} is newer than this monitor's code")
    slowest = max(ping_ms, query_ms)
    if slowest > SLOW_MS:
        found.add(Status.DEGRADED, Severity.SEV2, f"slow: {slowest:.0f} ms (over {SLOW_MS:.0f} ms)")
    elif slowest > TARGET_MS:
        found.details["note"] = f"above the {TARGET_MS:.0f} ms target"
    return found.result(f"{db.dialect} ok, query {query_ms:.0f} ms, {members} active members", slowest)


def _skipped(component: str, probe: Probe) -> CheckResult:
    return unknown(component, f"skipped: the database is unavailable ({probe.db_error})")


async def check_payment(probe: Probe) -> CheckResult:
    if probe.db_error:
        return _skipped("payment", probe)
    s = probe.settings
    found = Findings("payment")
    try:
        db = probe.database()

        async def window() -> queries.PaymentWindow:
            async with db.sessions() as session:
                return await queries.payment_window(session, probe.clock.now())

        win, ms = await probe.timed(window)
    except (DatabaseUnavailable, TimeoutError, Exception) as exc:
        return critical("payment", f"cannot read payments: {describe_error(exc)}")
    rate = win.success_rate
    found.details.update(
        window_minutes=int(queries.PAYMENT_WINDOW.total_seconds() // 60),
        succeeded=win.succeeded,
        failed=win.failed,
        success_rate=None if rate is None else round(rate, 3),
    )
    if rate is not None:
        pct = f"{rate:.0%} of {win.attempts} payments succeeded in the last hour"
        if rate == 0 and win.attempts >= MIN_ATTEMPTS_FOR_OUTAGE:
            found.add(Status.CRITICAL, Severity.SEV1, f"payments failing: {pct}")
        elif rate < SUCCESS_SEV2:
            found.add(Status.DEGRADED, Severity.SEV2, f"payment failures: {pct}")
        elif rate < SUCCESS_TARGET:
            found.add(Status.DEGRADED, Severity.SEV3, f"below the 95 % target: {pct}")
    if s.airwallex_enabled:
        found.details["airwallex"] = await _airwallex_login(probe, found)
        if s.airwallex_webhook_secret is None:
            found.add(
                Status.DEGRADED,
                Severity.SEV2,
                "AIRWALLEX_WEBHOOK_SECRET is not set: every card payment webhook is refused",
            )
    else:
        found.details["airwallex"] = "not configured"
    await _rejected_webhooks(probe, found)
    summary = "no payments in the last hour" if rate is None else f"{rate:.0%} of {win.attempts} succeeded"
    return found.result(summary, ms)


async def _airwallex_login(probe: Probe, found: Findings) -> str:
    s = probe.settings
    assert s.airwallex_client_id is not None and s.airwallex_api_key is not None
    url = s.airwallex_base_url.rstrip("/") + "/api/v1/authentication/login"
    headers = {"x-client-id": s.airwallex_client_id, "x-api-key": s.airwallex_api_key.get_secret_value()}
    try:
        response = await probe.http.post(url, headers=headers, json={}, timeout=10.0)
    except Exception as exc:
        found.add(
            Status.DEGRADED,
            Severity.SEV2,
            f"Airwallex unreachable ({describe_error(exc)}): card payments fail",
        )
        return "unreachable"
    if response.status_code in (401, 403):
        found.add(Status.CRITICAL, Severity.SEV1, "Airwallex refused our API key: card payments fail")
        return f"refused (HTTP {response.status_code})"
    if response.status_code >= 300:
        found.add(Status.DEGRADED, Severity.SEV2, f"Airwallex login answered HTTP {response.status_code}")
        return f"HTTP {response.status_code}"
    return "login ok"


async def _rejected_webhooks(probe: Probe, found: Findings) -> None:
    """Rejected payment webhooks are only counted in the server's memory: read them from its /metrics.

    The count is that one instance's since it started; a burst is judged between two passes of a continuous
    monitor (the previous sample is kept in ``probe.state``).
    """
    try:
        response = await probe.http.get(probe.app_base + "/metrics", timeout=3.0)
    except Exception:
        found.details["rejected_webhooks"] = "unavailable (/metrics not reachable)"
        return
    if response.status_code != 200:
        found.details["rejected_webhooks"] = f"unavailable (/metrics answered {response.status_code})"
        return
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith("subbot_webhook_rejected_total{"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
    found.details["rejected_webhooks"] = int(total)
    previous = probe.state.get("rejected_webhooks")
    probe.state["rejected_webhooks"] = total
    if isinstance(previous, float) and total - previous >= REJECTED_BURST:
        found.add(
            Status.DEGRADED,
            Severity.SEV2,
            f"{int(total - previous)} payment webhooks rejected since the last check "
            "(forged, or a wrong secret)",
        )


async def check_automation(probe: Probe) -> CheckResult:
    if probe.db_error:
        return _skipped("automation", probe)
    s = probe.settings
    grace = timedelta(hours=s.expiry_grace_hours)
    try:
        db = probe.database()

        async def read() -> tuple[queries.OutboxStats, tuple[int, int]]:
            now = probe.clock.now()
            async with db.sessions() as session:
                stats = await queries.outbox_stats(session, now)
                late = await queries.overdue(session, now, grace, queries.STUCK_AFTER)
            return stats, late

        (stats, (expired, reminders)), ms = await probe.timed(read)
    except (DatabaseUnavailable, TimeoutError, Exception) as exc:
        return critical("automation", f"cannot read the outbox: {describe_error(exc)}")
    found = Findings("automation")
    found.details.update(
        outbox_backlog=stats.backlog,
        oldest_due_job_minutes=round(stats.oldest_due_seconds / 60, 1),
        stale_running_jobs=stats.stale_running,
        dead_jobs_last_hour=stats.dead_recent,
        overdue_expiries=expired,
        overdue_reminders=reminders,
    )
    stuck_min = queries.STUCK_AFTER.total_seconds() / 60
    if stats.oldest_due_seconds > queries.STUCK_AFTER.total_seconds():
        found.add(
            Status.DEGRADED,
            Severity.SEV2,
            f"outbox stuck: a due job has waited {stats.oldest_due_seconds / 60:.0f} min "
            f"(over {stuck_min:.0f}); is `subbot run` running?",
        )
    if stats.stale_running:
        found.add(Status.DEGRADED, Severity.SEV2, f"{stats.stale_running} outbox jobs held by a dead worker")
    if stats.dead_recent:
        kinds = ", ".join(stats.dead_kinds)
        found.add(
            Status.DEGRADED,
            Severity.SEV2,
            f"{stats.dead_recent} outbox jobs gave up in the last hour ({kinds})",
        )
    if expired:
        found.add(
            Status.DEGRADED,
            Severity.SEV2,
            f"{expired} subscriptions past their end and grace are still active",
        )
    if reminders:
        found.add(Status.DEGRADED, Severity.SEV3, f"{reminders} expiry reminders overdue")
    return found.result(f"outbox backlog {stats.backlog}, nothing overdue", ms)
