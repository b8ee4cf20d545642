"""The production monitor: runs checks, classifies them by the runbook's SEV levels, alerts on transitions.

Entry points: ``python scripts/monitor_production.py …`` (the runbook's commands), ``subbot monitor …``, and
:class:`ProductionMonitor` for ``python -c`` one-liners. Exit code: 0 healthy, 1 degraded, 2 critical.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from subbot.config import ConfigError, Settings, load_settings
from subbot.domain.clock import Clock, SystemClock
from subbot.ops.alerts import AttemptLog, Delivery, Notifier, Transport, transports_from_settings
from subbot.ops.checks import ALL_CHECKS, expand, run_checks
from subbot.ops.incidents.delivery import Courier
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.tracker import CONFIRMING, IncidentTracker, QuietNotifier, shared_with_incidents
from subbot.ops.monitoring.alert_state import AlertManager, AlertPolicy, Sent
from subbot.ops.monitoring.base import CheckResult, DatabaseUnavailable, Probe, exit_code, worst
from subbot.store.db import Database

log = logging.getLogger(__name__)
LEVEL_ICONS = {"INFO": "ℹ️", "WARNING": "⚠️", "ERROR": "🔴", "CRITICAL": "🔴", "SEV-1": "🔴", "SEV-2": "🟠"}


@dataclass
class Pass:
    """One monitor pass: what was checked, and what was sent."""

    results: list[CheckResult]
    sent: list[Sent] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code(self.results)

    def to_json(self, checked_at: str) -> dict[str, Any]:
        return {
            "checked_at": checked_at,
            "status": worst(self.results).value,
            "exit_code": self.exit_code,
            "results": [r.to_json() for r in self.results],
            "alerts": [
                {
                    "component": s.component,
                    "kind": s.kind,
                    "severity": s.severity,
                    "delivered": [d.transport for d in s.deliveries if d.ok],
                }
                for s in self.sent
            ],
        }


class Monitor:
    """Checks plus alert state; use as ``async with Monitor(settings) as m: ...``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        alerts: bool = True,
        policy: AlertPolicy | None = None,
        transports: list[Transport] | None = None,
        http: httpx.AsyncClient | None = None,
        db_timeout: float = 5.0,
        retry_backoff: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        host: str | None = None,
        incidents: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.alerts_enabled = alerts
        self.sleep = sleep
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self.probe = Probe(settings, self.clock, self.http, db_timeout=db_timeout)
        self.attempts = AttemptLog(None, self.clock)
        chosen = transports if transports is not None else transports_from_settings(settings, self.http)
        if incidents:  # one voice per channel: where incident messages go, they replace the raw alerts
            shared = shared_with_incidents(settings)
            chosen = [t for t in chosen if t.name not in shared]
        self.notifier = (QuietNotifier if incidents else Notifier)(
            chosen, self.attempts, backoff=retry_backoff, sleep=sleep
        )
        self.host = host or socket.gethostname()
        self.manager = AlertManager(None, self.notifier, self.clock, policy, self.host)
        self.incidents: IncidentTracker | None = None  # opens and follows incidents (docs/incidents.md)
        if incidents:
            self.incidents = IncidentTracker(
                IncidentPolicy.from_settings(settings),
                Courier.from_settings(settings, self.http),
                self.clock,
                self.host,
                sleep,
            )

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.probe.aclose()
        if self._own_http:
            await self.http.aclose()

    def _db(self) -> Database | None:
        """The database for alert state and attempt rows, when it exists (never created here)."""
        try:
            return self.probe.database()
        except DatabaseUnavailable:
            return None

    async def check(self, names: list[str] | tuple[str, ...] = ALL_CHECKS) -> list[CheckResult]:
        return await run_checks(self.probe, names)

    async def run_once(self, names: list[str] | tuple[str, ...] = ALL_CHECKS) -> Pass:
        results = await self.check(names)
        result = Pass(results)
        if self.alerts_enabled:
            db = None if self.probe.db_error else self._db()
            self.manager.db = self.attempts.db = db
            result.sent = await self.manager.observe(results)
            if self.incidents is not None:
                await self._feed_incidents(self.incidents, results, result.sent, db)
        return result

    async def _feed_incidents(
        self, tracker: IncidentTracker, results: list[CheckResult], sent: list[Sent], db: Database | None
    ) -> None:
        """The pass goes into the monitor's incident; a problem there never stops the monitor."""
        alerted = {s.component for s in sent if s.kind in CONFIRMING}
        since = {component: snap.since for component, snap in self.manager.memory.items()}
        try:
            await tracker.observe(results, alerted, db, since)
        except Exception:
            log.exception("incident tracking failed in this pass")

    async def run_continuous(
        self,
        names: list[str] | tuple[str, ...],
        interval: float,
        *,
        max_iterations: int | None = None,
        on_pass: Callable[[Pass], None] | None = None,
    ) -> Pass:
        """Pass after pass, ``interval`` seconds apart, until cancelled (Ctrl+C) or ``max_iterations``."""
        done = 0
        while True:
            current = await self.run_once(names)
            if on_pass is not None:
                on_pass(current)
            done += 1
            if max_iterations is not None and done >= max_iterations:
                return current
            await self.sleep(interval)

    async def send_alert(
        self, message: str, level: str = "INFO", component: str = "manual"
    ) -> list[Delivery]:
        """Send ``message`` now through every configured channel (no state, no threshold)."""
        level = level.upper()
        self.attempts.db = self._db()
        text = f"{LEVEL_ICONS.get(level, 'ℹ️')} [{level}] {message}\nMonitor: {self.host}"
        return await self.notifier.send(component, level[:8], text)


class ProductionMonitor:
    """The runbook's API: ``asyncio.run(ProductionMonitor().send_alert('Test alert', 'INFO'))``.

    Settings come from the environment and ``.env`` when not given.
    """

    def __init__(self, settings: Settings | None = None, **monitor_options: Any) -> None:
        self._settings = settings
        self._options = monitor_options

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    async def send_alert(self, message: str, level: str = "INFO") -> bool:
        """True when at least one channel accepted the message."""
        async with Monitor(self.settings, **self._options) as monitor:
            deliveries = await monitor.send_alert(message, level)
        for d in deliveries:
            state = "delivered" if d.ok else f"FAILED ({d.error})"
            print(f"alert via {d.transport}: {state}", file=sys.stderr)
        if not deliveries:
            print(
                "no alert channel configured: set ALERT_WEBHOOK_URL and/or ALERT_TELEGRAM_CHAT_ID",
                file=sys.stderr,
            )
        return any(d.ok for d in deliveries)

    async def check(self, *names: str) -> list[CheckResult]:
        async with Monitor(self.settings, alerts=False, **self._options) as monitor:
            return await monitor.check(list(names) or ["all"])

    async def full_check(self) -> list[CheckResult]:
        return await self.check("all")


# ------------------------------------------------------------------------------------------- command line
@dataclass
class Options:
    checks: list[str]
    continuous: bool = False
    interval: float = 60.0
    alerts: bool = True
    json: bool = False
    max_iterations: int | None = None
    threshold: int = 3
    repeat_minutes: float = 15.0


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Check subbot in production; alert to Slack/Telegram. "
        "Exit 0 healthy, 1 degraded, 2 critical.",
    )
    p.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help=f"one of {', '.join((*ALL_CHECKS, 'all'))} (repeat or comma-separate for several)",
    )
    p.add_argument("--full-check", action="store_true", help="every check")
    p.add_argument(
        "--continuous", action="store_true", help="check again every --interval seconds until Ctrl+C"
    )
    p.add_argument("--interval", type=float, default=60.0, help="seconds between passes (default 60)")
    p.add_argument("--max-iterations", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-alerts", action="store_true", help="check only; send no alert")
    p.add_argument("--json", action="store_true", help="print one JSON object per pass")
    p.add_argument(
        "--alert-after", type=int, default=3, help="consecutive failures before alerting (default 3)"
    )
    p.add_argument("--repeat-minutes", type=float, default=15.0, help="repeat unresolved alerts (default 15)")
    return p


def parse_options(argv: list[str], prog: str) -> Options:
    p = parser(prog)
    args = p.parse_args(argv)
    names = [n.strip() for raw in (args.check or []) for n in raw.split(",") if n.strip()]
    if args.full_check:
        names.append("all")
    try:
        names = expand(names or ["all"])
    except ValueError as exc:
        p.error(str(exc))
    if args.interval <= 0:
        p.error("--interval must be positive")
    if args.alert_after < 1:
        p.error("--alert-after must be at least 1")
    return Options(
        names,
        args.continuous,
        args.interval,
        not args.no_alerts,
        args.json,
        args.max_iterations,
        args.alert_after,
        args.repeat_minutes,
    )


async def execute(options: Options, settings: Settings, *, clock: Clock | None = None) -> int:
    from subbot.ops.monitoring.render import render_pass

    policy = AlertPolicy(options.threshold, timedelta(minutes=options.repeat_minutes))
    async with Monitor(
        settings, clock=clock, alerts=options.alerts, policy=policy, incidents=settings.incident_auto_open
    ) as monitor:

        def show(p: Pass) -> None:
            render_pass(p, monitor.clock.now(), as_json=options.json)

        if options.continuous:
            last = await monitor.run_continuous(
                options.checks, options.interval, max_iterations=options.max_iterations, on_pass=show
            )
        else:
            last = await monitor.run_once(options.checks)
            show(last)
        return last.exit_code


def main(argv: list[str] | None = None, prog: str = "monitor_production.py") -> int:
    options = parse_options(sys.argv[1:] if argv is None else argv, prog)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(execute(options, settings))
    except KeyboardInterrupt:
        print("monitor stopped", file=sys.stderr)
        return 130
