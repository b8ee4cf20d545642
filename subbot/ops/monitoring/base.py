"""What a check returns, and the context every check runs in (settings, clock, HTTP client, database)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import make_url

from subbot.config import Settings
from subbot.domain.clock import Clock
from subbot.store.db import Database, create_database

T = TypeVar("T")


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    UNKNOWN = "unknown"  # not checked (not configured, not deployed, or skipped because a dependency failed)


class Severity(StrEnum):
    """The runbook's incident levels."""

    SEV1 = "SEV-1"  # production down: respond within 15 minutes
    SEV2 = "SEV-2"  # degraded service: within 30 minutes
    SEV3 = "SEV-3"  # limited impact: within 2 hours


SEVERITY_RANK = {None: 0, Severity.SEV3: 1, Severity.SEV2: 2, Severity.SEV1: 3}
STATUS_RANK = {Status.UNKNOWN: 0, Status.OK: 0, Status.DEGRADED: 1, Status.CRITICAL: 2}


@dataclass
class CheckResult:
    component: str
    status: Status
    summary: str
    severity: Severity | None = None
    latency_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        return self.status in (Status.DEGRADED, Status.CRITICAL)

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "status": self.status.value,
            "severity": self.severity.value if self.severity else None,
            "summary": self.summary,
            "latency_ms": self.latency_ms,
            "details": self.details,
        }


def ok(component: str, summary: str, **details: Any) -> CheckResult:
    return CheckResult(component, Status.OK, summary, details=details)


def unknown(component: str, summary: str, **details: Any) -> CheckResult:
    return CheckResult(component, Status.UNKNOWN, summary, details=details)


def degraded(component: str, severity: Severity, summary: str, **details: Any) -> CheckResult:
    return CheckResult(component, Status.DEGRADED, summary, severity, details=details)


def critical(component: str, summary: str, **details: Any) -> CheckResult:
    return CheckResult(component, Status.CRITICAL, summary, Severity.SEV1, details=details)


def worst(results: list[CheckResult]) -> Status:
    failing = [r.status for r in results if r.failing]
    return max(failing, key=lambda s: STATUS_RANK[s]) if failing else Status.OK


def exit_code(results: list[CheckResult]) -> int:
    """0 healthy, 1 degraded, 2 critical (the original monitor's contract)."""
    return STATUS_RANK[worst(results)]


class DatabaseUnavailable(Exception):
    """The database cannot be reached or used; the message is for the operator."""


@dataclass
class Probe:
    """Everything a check may use. The database is opened on first use and never created by the monitor."""

    settings: Settings
    clock: Clock
    http: httpx.AsyncClient
    db_timeout: float = 5.0
    db_error: str | None = None  # set when this run's database check failed: DB-based checks skip
    state: dict[str, Any] = field(default_factory=dict)  # kept between runs of a continuous monitor
    _db: Database | None = None

    @property
    def api_base(self) -> str:
        return self.settings.telegram_api_url.rstrip("/")

    @property
    def app_base(self) -> str:
        """Where our HTTP server answers: PUBLIC_URL, or this machine's port."""
        return (self.settings.public_url or f"http://127.0.0.1:{self.settings.port}").rstrip("/")

    def database(self) -> Database:
        if self._db is None:
            self._db = open_database(self.settings)
        return self._db

    async def timed(self, work: Callable[[], Awaitable[T]], limit: float | None = None) -> tuple[T, float]:
        """(result, milliseconds); ``TimeoutError`` after ``limit`` s (default: the database timeout)."""
        started = time.perf_counter()
        value = await asyncio.wait_for(work(), self.db_timeout if limit is None else limit)
        return value, round((time.perf_counter() - started) * 1000, 1)

    async def aclose(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None


def open_database(settings: Settings) -> Database:
    """The configured database, without side effects: a missing SQLite file is an error, not created."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).is_file():
            raise DatabaseUnavailable(f"SQLite database file {path} does not exist (run `subbot migrate`)")
    return create_database(url, pool_size=1, pooler=not settings.database_statement_cache_enabled)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class Findings:
    """Collects the problems one check finds; the result carries the worst status and severity."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.problems: list[tuple[Status, Severity, str]] = []
        self.details: dict[str, Any] = {}

    def add(self, status: Status, severity: Severity, message: str) -> None:
        self.problems.append((status, severity, message))

    def result(self, ok_summary: str, latency_ms: float | None = None) -> CheckResult:
        if not self.problems:
            return CheckResult(self.component, Status.OK, ok_summary, None, latency_ms, self.details)
        ordered = sorted(self.problems, key=lambda p: (STATUS_RANK[p[0]], SEVERITY_RANK[p[1]]), reverse=True)
        status, severity = ordered[0][0], ordered[0][1]
        summary = "; ".join(message for _, _, message in ordered)
        return CheckResult(self.component, status, summary, severity, latency_ms, self.details)
