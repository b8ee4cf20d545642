"""GET /health: measured, not assumed, and cached for a few seconds so probes cannot overload the database.

Status is ``ok``, ``degraded`` (HTTP 200: serving, but something needs a look) or ``down`` (HTTP 503: the
database is unreachable). The same probe refreshes the database-fed gauges of /metrics.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from subbot import __version__, metrics
from subbot.ops.monitoring import queries
from subbot.services.lifecycle import overdue_counts

if TYPE_CHECKING:
    from subbot.app import SubbotApp

HEALTH_TTL = 5.0  # seconds a result is reused
DB_TIMEOUT = 5.0
DB_SLOW_MS = 100.0  # the runbook's target for a query
WEBHOOK_INFO_TTL = 30.0  # getWebhookInfo is asked of Telegram at most this often
PENDING_MAX = 100
RECENT_ERROR_S = 15 * 60
HEARTBEAT_STALE_MIN = 300.0
SUCCESS_MIN = 0.90


class HealthProbe:
    """Measures the components; concurrent requests within the TTL share one measurement."""

    def __init__(self, app: SubbotApp, ttl: float = HEALTH_TTL) -> None:
        self.app = app
        self.ttl = ttl
        self.db_round_trips = 0  # database measurements made (tests check the cache with it)
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._webhook_info: tuple[float, dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl:
                return {**self._cached[1], "cached": True}
            body = await self._measure()
            self._cached = (time.monotonic(), body)
            return {**body, "cached": False}

    async def _measure(self) -> dict[str, Any]:
        app = self.app
        components: dict[str, Any] = {}
        try:
            database, payments_db, workers_db = await asyncio.wait_for(self._database(), DB_TIMEOUT)
        except Exception as exc:
            metrics.DB_UP.set(0)
            error = "timed out" if isinstance(exc, TimeoutError) else exc.__class__.__name__
            database, payments_db, workers_db = {"status": "down", "error": error}, None, None
        components["database"] = database
        components["telegram"] = await self._telegram()
        components["payments"] = self._payments(payments_db)
        components["workers"] = self._workers(workers_db)
        components["maintenance"] = {"status": "ok", "enabled": app.maintenance}
        statuses = {c.get("status") for c in components.values()}
        status = "down" if database["status"] == "down" else "degraded" if "degraded" in statuses else "ok"
        return {
            "status": status,
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - app.started_at, 1),
            "mode": "webhook" if app.webhook_mode else "polling",
            "checked_at": app.clock.now().isoformat(),
            "components": components,
        }

    async def _database(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        app = self.app
        now = app.clock.now()
        grace = app.ctx.policy.expiry_grace
        async with app.db.sessions() as session:
            started = time.perf_counter()
            await session.execute(text("SELECT 1"))
            latency = time.perf_counter() - started
            self.db_round_trips += 1
            stats = await queries.outbox_stats(session, now)
            window = await queries.payment_window(session, now)
            totals = await queries.payment_totals(session)
            members = await queries.active_members(session, now)
            late_expiries, late_reminders = await queries.overdue(session, now, grace, queries.STUCK_AFTER)
        due_expiries, due_reminders = await overdue_counts(app.ctx)
        metrics.DB_UP.set(1)
        metrics.DB_QUERY_SECONDS.set(latency)
        metrics.OUTBOX_BACKLOG.set(stats.backlog)
        metrics.OUTBOX_OLDEST_DUE_SECONDS.set(stats.oldest_due_seconds)
        metrics.OUTBOX_DEAD_RECENT.set(stats.dead_recent)
        metrics.ACTIVE_MEMBERS.set(members)
        metrics.PAYMENTS.totals = totals
        ms = round(latency * 1000, 1)
        database = {
            "status": "degraded" if ms > DB_SLOW_MS else "ok",
            "dialect": app.db.dialect,
            "latency_ms": ms,
            "active_members": members,
        }
        payments = {
            "succeeded_last_hour": window.succeeded,
            "failed_last_hour": window.failed,
            "success_rate": None if window.success_rate is None else round(window.success_rate, 3),
        }
        workers = {
            "outbox_backlog": stats.backlog,
            "oldest_due_job_seconds": round(stats.oldest_due_seconds, 1),
            "stale_running_jobs": stats.stale_running,
            "dead_jobs_last_hour": stats.dead_recent,
            "expiries_due": due_expiries,
            "reminders_due": due_reminders,
            "expiries_overdue": late_expiries,
            "reminders_overdue": late_reminders,
        }
        return database, payments, workers

    async def _telegram(self) -> dict[str, Any]:
        gateway = self.app.gateway
        last = gateway.last_success
        out: dict[str, Any] = {
            "status": "ok",
            "last_success_seconds_ago": None if last is None else round(time.monotonic() - last, 1),
            "calls": gateway.calls,
            "failures": gateway.failures,
        }
        if not self.app.webhook_mode:
            return out
        info = await self._webhook_state()
        out["webhook"] = info
        if "error" in info:
            out["status"] = "degraded"
        elif info["pending_update_count"] > PENDING_MAX:
            out["status"] = "degraded"
        elif (
            info.get("last_error_age_seconds") is not None and info["last_error_age_seconds"] < RECENT_ERROR_S
        ):
            out["status"] = "degraded"
        return out

    async def _webhook_state(self) -> dict[str, Any]:
        if self._webhook_info is not None and time.monotonic() - self._webhook_info[0] < WEBHOOK_INFO_TTL:
            return self._webhook_info[1]
        state: dict[str, Any]
        try:
            info = await asyncio.wait_for(self.app.bot.get_webhook_info(), 5.0)
        except Exception as exc:
            state = {"error": "timed out" if isinstance(exc, TimeoutError) else exc.__class__.__name__}
        else:
            age = None
            if info.last_error_date is not None:
                age = round(self.app.clock.now().timestamp() - info.last_error_date.timestamp(), 1)
            state = {
                "url_set": bool(info.url),
                "pending_update_count": info.pending_update_count,
                "last_error_age_seconds": age,
                "last_error_message": info.last_error_message,
            }
        self._webhook_info = (time.monotonic(), state)
        return state

    def _payments(self, measured: dict[str, Any] | None) -> dict[str, Any]:
        s = self.app.settings
        secret_ok = s.airwallex_webhook_secret is not None
        out: dict[str, Any] = {
            "status": "ok",
            "stars": True,
            "airwallex_configured": s.airwallex_enabled,
            "webhook_secret_configured": secret_ok,
        }
        if s.airwallex_enabled and not secret_ok:
            out["status"] = "degraded"  # card payments would be taken but their webhooks refused
            out["problem"] = "AIRWALLEX_WEBHOOK_SECRET is not set: card payment webhooks are refused"
        if measured is None:
            return out
        out.update(measured)
        rate = measured["success_rate"]
        if rate is not None and rate < SUCCESS_MIN:
            out["status"] = "degraded"
        return out

    def _workers(self, measured: dict[str, Any] | None) -> dict[str, Any]:
        app = self.app
        heartbeat = app.scheduler.heartbeat
        age = None if heartbeat is None else round(asyncio.get_running_loop().time() - heartbeat, 1)
        out: dict[str, Any] = {
            "status": "ok" if heartbeat is not None else "unknown",
            "scheduler_heartbeat_age_seconds": age,
        }
        stale_after = max(HEARTBEAT_STALE_MIN, 3 * app.settings.sweep_interval_seconds)
        problems: list[str] = []
        if age is not None and age > stale_after:
            problems.append(f"scheduler silent for {age:.0f} s")
        if measured is not None:
            out.update(measured)
            if measured["oldest_due_job_seconds"] > queries.STUCK_AFTER.total_seconds():
                problems.append("outbox stuck")
            if measured["stale_running_jobs"]:
                problems.append("outbox jobs held by a dead worker")
            if measured["expiries_overdue"]:
                problems.append("expiries overdue")
        if problems:
            out["status"] = "degraded"
            out["problems"] = problems
        return out


def probe_for(app: SubbotApp) -> HealthProbe:
    """The app's one probe, shared by /health and /metrics."""
    probe = getattr(app, "_health_probe", None)
    if not isinstance(probe, HealthProbe):
        probe = HealthProbe(app)
        setattr(app, "_health_probe", probe)  # noqa: B010 - SubbotApp is not ours to extend
    return probe


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> JSONResponse:
        body = await probe_for(app).get()
        return JSONResponse(body, status_code=503 if body["status"] == "down" else 200)

    return router


__all__ = ["HEALTH_TTL", "HealthProbe", "build_router", "probe_for"]
