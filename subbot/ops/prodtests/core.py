"""The suite: settings, database, HTTP clients, results and reports.  The checks live in sibling modules.

Every check runs against the configured deployment and never damages real data: it reads, or writes
rows marked as test rows inside a transaction that is rolled back.  Nothing here creates a payment intent,
sends a Telegram message or changes the webhook.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from subbot.config import Settings, load_settings, secret_values
from subbot.logging_setup import redact
from subbot.store.db import Database

TEST_NAMES = ("bot", "database", "subscription", "payment", "admin", "error", "load", "webhook")


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


class Skip(Exception):
    """The check cannot run here; the message says why."""


class Fail(Exception):
    """The check ran and found a problem; the message says what."""

    def __init__(self, summary: str, details: list[str] | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.details = details or []


class TelegramCallError(Exception):
    """A Bot API call failed; the text never contains the token."""


@dataclass
class Server:
    """Where the HTTP checks go: PUBLIC_URL, --url, or this host's PORT on loopback."""

    base: str
    reachable: bool
    reason: str
    public: bool


Check = Callable[["ProductionTestSuite", list[str]], Awaitable[str]]


class ProductionTestSuite:
    """``suite = ProductionTestSuite(); await suite.initialize(); results = await suite.run(["bot"])``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        base_url: str | None = None,
        load_requests: int = 20,
        load_concurrency: int = 5,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings_given = settings
        self._settings = settings
        self.base_url = base_url.rstrip("/") if base_url else None
        self.load_requests = max(1, min(load_requests, 200))
        self.load_concurrency = max(1, min(load_concurrency, 20))
        self.timeout = timeout
        self.transport = transport
        self._db: Database | None = None
        self.db_error: str | None = None
        self._http: httpx.AsyncClient | None = None
        self._server: Server | None = None
        self.initialized = False

    # ------------------------------------------------------------------ set-up
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("call `await suite.initialize()` first")
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError(self.db_error or "call `await suite.initialize()` first")
        return self._db

    async def initialize(self) -> None:
        """Load settings (ConfigError if invalid) and open the database.  No Telegram or HTTP call.

        A database that cannot be opened is recorded in ``db_error`` (the database checks report it) rather
        than raised, so the Telegram checks still run during a database incident.  The connection pool is
        released before returning: the suite may be used again from a later ``asyncio.run``.
        """
        from sqlalchemy import text

        from subbot.ops.supabase import open_database

        if self._settings is None:
            self._settings = load_settings()
        if self._db is None:
            try:
                db = open_database(self._settings)
            except Exception as exc:
                self.db_error = self.clean(str(exc))
            else:
                try:
                    async with db.engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                except Exception as exc:
                    self.db_error = f"cannot connect to {self._settings.database_url_masked}: " + self.clean(
                        f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    )
                    await db.dispose()
                else:
                    self._db = db
                    self.db_error = None
                    await db.dispose()  # keep the engine, drop the connections bound to this event loop
        self.initialized = True

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._db is not None:
            await self._db.dispose()

    # ------------------------------------------------------------------ helpers for checks
    def clean(self, text: str) -> str:
        """Any secret (token, keys, database password) replaced by [REDACTED]."""
        secrets = secret_values(self._settings) if self._settings is not None else []
        return redact(text, secrets)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, transport=self.transport)
        return self._http

    def bot_token(self) -> str:
        if self.settings.bot_token is None:
            raise Skip("BOT_TOKEN is not set")
        return self.settings.bot_token.get_secret_value()

    async def telegram(self, method: str, **params: Any) -> Any:
        """One Bot API call over HTTP (TELEGRAM_API_URL); raises TelegramCallError without the token."""
        url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{self.bot_token()}/{method}"
        try:
            response = await self.http.post(url, json=params)
        except httpx.HTTPError as exc:
            raise TelegramCallError(f"{method}: Telegram unreachable ({exc.__class__.__name__})") from None
        try:
            body = response.json()
        except ValueError:
            raise TelegramCallError(f"{method}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description", "") if isinstance(body, dict) else ""
            raise TelegramCallError(
                self.clean(f"{method}: HTTP {response.status_code} {description}".rstrip())
            )
        return body.get("result")

    async def server(self) -> Server:
        """The HTTP target, probed once per run with GET /health."""
        if self._server is not None:
            return self._server
        s = self.settings
        if self.base_url:
            base, public = self.base_url, True
        elif s.public_url:
            base, public = s.public_url, True
        else:
            base, public = f"http://127.0.0.1:{s.port}", False
        try:
            response = await self.http.get(f"{base}/health", timeout=min(self.timeout, 5.0))
        except httpx.HTTPError as exc:
            if public:
                reason = f"{base} is unreachable ({exc.__class__.__name__})"
            else:
                reason = (
                    f"no subbot answers on {base} ({exc.__class__.__name__}); run this on the host that "
                    "serves subbot, set PUBLIC_URL, or pass --url"
                )
            self._server = Server(base, False, reason, public)
        else:
            self._server = Server(base, True, f"GET /health → {response.status_code}", public)
        return self._server

    async def reachable_server(self) -> Server:
        server = await self.server()
        if not server.reachable:
            raise Skip(server.reason)
        return server

    # ------------------------------------------------------------------ running
    def checks(self) -> dict[str, Check]:
        from subbot.ops.prodtests import data_checks, http_checks, telegram_checks

        return {
            "bot": telegram_checks.check_bot,
            "database": data_checks.check_database,
            "subscription": data_checks.check_subscription,
            "payment": data_checks.check_payment,
            "admin": telegram_checks.check_admin,
            "error": http_checks.check_error,
            "load": http_checks.check_load,
            "webhook": http_checks.check_webhook,
        }

    async def run_one(self, name: str) -> TestResult:
        check = self.checks()[name]
        details: list[str] = []
        started = time.perf_counter()
        try:
            summary = await check(self, details)
            status = Status.PASSED
        except Skip as exc:
            status, summary = Status.SKIPPED, str(exc)
        except Fail as exc:
            status, summary = Status.FAILED, exc.summary
            if exc.details:  # checks pass their details plus any extra lines
                details = exc.details
        except TelegramCallError as exc:
            status, summary = Status.FAILED, str(exc)
        except Exception as exc:  # a check must never crash the suite; report it as a failure
            status = Status.FAILED
            summary = f"unexpected {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        elapsed = (time.perf_counter() - started) * 1000
        return TestResult(
            name, status, self.clean(summary), [self.clean(d) for d in details], round(elapsed, 1)
        )

    async def run(self, names: Sequence[str] = TEST_NAMES) -> list[TestResult]:
        unknown = [n for n in names if n not in TEST_NAMES]
        if unknown:
            raise ValueError(f"unknown test(s): {', '.join(unknown)}; choose from {', '.join(TEST_NAMES)}")
        if not self.initialized:
            await self.initialize()
        self._server = None
        try:
            return [await self.run_one(name) for name in dict.fromkeys(names)]
        finally:
            if self._http is not None:
                await self._http.aclose()
                self._http = None
            if self._db is not None:
                await self._db.dispose()


# ------------------------------------------------------------------ reports
_STYLE = {Status.PASSED: "green", Status.FAILED: "bold red", Status.SKIPPED: "yellow"}
_MARK = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "–"}


def counts(results: Sequence[TestResult]) -> dict[str, int]:
    return {s.value: sum(1 for r in results if r.status is s) for s in Status}


def render_table(results: Sequence[TestResult], console: Console, *, verbose: bool = True) -> None:
    table = Table(title="subbot production tests", show_lines=False)
    table.add_column("test")
    table.add_column("result")
    table.add_column("ms", justify="right")
    table.add_column("summary", overflow="fold")
    for r in results:
        style = _STYLE[r.status]
        table.add_row(
            r.name, f"[{style}]{_MARK[r.status]} {r.status.value}[/]", f"{r.duration_ms:.0f}", r.summary
        )
    console.print(table)
    if verbose:
        for r in results:
            if r.details:
                console.print(f"[bold]{r.name}[/]", highlight=False)
                for line in r.details:
                    console.print(f"  {line}", highlight=False, markup=False)
    c = counts(results)
    verdict = "[bold red]FAILED[/]" if c["failed"] else "[bold green]OK[/]"
    console.print(f"{verdict}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")


def report_json(suite: ProductionTestSuite, results: Sequence[TestResult]) -> str:
    s = suite.settings
    body = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": {
            "database": s.database_url_masked,
            "telegram_api_url": s.telegram_api_url,
            "public_url": s.public_url,
            "environment": s.environment,
        },
        "summary": counts(results),
        "ok": not any(r.status is Status.FAILED for r in results),
        "results": [r.as_dict() for r in results],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(suite: ProductionTestSuite, results: Sequence[TestResult]) -> str:
    s = suite.settings
    c = counts(results)
    lines = [
        "# subbot production tests",
        "",
        f"- generated: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- database: `{s.database_url_masked}`",
        f"- public URL: `{s.public_url or '(polling mode)'}`",
        f"- result: **{'FAILED' if c['failed'] else 'OK'}** — {c['passed']} passed, {c['failed']} failed, "
        f"{c['skipped']} skipped",
        "",
        "| test | result | ms | summary |",
        "|---|---|---:|---|",
    ]
    lines += [
        f"| {r.name} | {_MARK[r.status]} {r.status.value} | {r.duration_ms:.0f} | {_md(r.summary)} |"
        for r in results
    ]
    for r in results:
        if r.details:
            lines += ["", f"## {r.name}", ""] + [f"- {_md(d)}" for d in r.details]
    return "\n".join(lines) + "\n"


def write_report(path: Path, suite: ProductionTestSuite, results: Sequence[TestResult]) -> None:
    """JSON for ``.json``, Markdown for ``.md``/``.markdown`` (anything else is refused)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = report_json(suite, results)
    elif suffix in (".md", ".markdown"):
        text = report_markdown(suite, results)
    else:
        raise ValueError("--report must end in .json or .md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def gather_limited(n: int, limit: int, make: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run ``make()`` n times with at most ``limit`` at once; exceptions are returned, not raised."""
    gate = asyncio.Semaphore(limit)

    async def one() -> Any:
        async with gate:
            return await make()

    return list(await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True))
