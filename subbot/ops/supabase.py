"""Database connection checks (Supabase or any PostgreSQL, or SQLite), for the runbook's connection test.

``python scripts/test_supabase_connection.py`` runs :func:`main`: it connects with DATABASE_URL, prints the
backend, latency, server version and schema revision, and, when SUPABASE_URL and SUPABASE_SERVICE_KEY are
set, checks the key against Supabase's REST endpoint.  It never prints the key or the database password.

Exit codes: 0 all good; 1 the database cannot be reached; 2 configuration error; 3 the schema is not at
this code's revision (run ``subbot migrate``); 4 the Supabase REST check failed (key rejected, unreachable).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.engine import make_url

from subbot.config import ConfigError, Settings, load_settings
from subbot.store.db import Database, create_database
from subbot.store.migrate import SchemaState, head_revision, schema_state

EXIT_OK, EXIT_DB, EXIT_CONFIG, EXIT_SCHEMA, EXIT_SUPABASE = 0, 1, 2, 3, 4


class DatabaseMissing(Exception):
    """DATABASE_URL names an SQLite file that does not exist: checks never create a database."""


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file DATABASE_URL points at when it does not exist (None otherwise, or for PostgreSQL)."""
    if not url.startswith("sqlite"):
        return None
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = Path(name)
    return None if path.exists() else path


def open_database(settings: Settings) -> Database:
    """The Database for DATABASE_URL, refusing to create a missing SQLite file."""
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise DatabaseMissing(
            f"the SQLite database {missing} does not exist (DATABASE_URL); nothing to check"
        )
    return create_database(
        settings.database_url,
        pool_size=min(settings.database_pool_size, 2),
        pooler=not settings.database_statement_cache_enabled,
    )


@dataclass
class ConnectionReport:
    backend: str
    url: str  # masked
    latency_ms: float
    server_version: str
    schema: str  # SchemaState value
    revision: str | None
    head: str
    pooler: bool
    statement_cache: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def probe(db: Database, settings: Settings) -> ConnectionReport:
    """One round trip (latency), the server version and the schema revision."""
    started = time.perf_counter()
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        latency = (time.perf_counter() - started) * 1000
        if db.dialect == "sqlite":
            version = "SQLite " + str((await conn.execute(text("SELECT sqlite_version()"))).scalar_one())
        else:
            version = "PostgreSQL " + str((await conn.execute(text("SHOW server_version"))).scalar_one())
    state, revision = await schema_state(db)
    return ConnectionReport(
        backend=settings.database_backend,
        url=settings.database_url_masked,
        latency_ms=round(latency, 1),
        server_version=version,
        schema=state.value,
        revision=revision,
        head=head_revision(),
        pooler=settings.database_uses_pooler,
        statement_cache=settings.database_statement_cache_enabled,
    )


async def check_database(settings: Settings) -> ConnectionReport:
    db = open_database(settings)
    try:
        return await probe(db, settings)
    finally:
        await db.dispose()


@dataclass
class RestCheck:
    ok: bool
    detail: str
    status: int | None = None


async def check_supabase_rest(
    supabase_url: str,
    service_key: str,
    *,
    timeout_seconds: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RestCheck:
    """``GET {SUPABASE_URL}/rest/v1/`` with the key: 200 means Supabase accepts it.  Never echoes the key."""
    headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, transport=transport) as client:
            response = await client.get(f"{supabase_url.rstrip('/')}/rest/v1/", headers=headers)
    except httpx.HTTPError as exc:
        return RestCheck(False, f"Supabase REST endpoint unreachable ({exc.__class__.__name__})")
    if response.status_code == 200:
        return RestCheck(True, "service key accepted", 200)
    if response.status_code in (401, 403):
        return RestCheck(
            False,
            f"service key rejected (HTTP {response.status_code}): check SUPABASE_SERVICE_KEY "
            "(Project Settings → API → service_role)",
            response.status_code,
        )
    return RestCheck(False, f"unexpected answer HTTP {response.status_code}", response.status_code)


async def run_check(settings: Settings, console: Console) -> int:
    console.print(
        f"Database: [bold]{settings.database_backend}[/] {settings.database_url_masked}", highlight=False
    )
    if settings.database_uses_pooler:
        console.print("  Supabase transaction pooler (port 6543): prepared-statement cache disabled")
    try:
        report = await check_database(settings)
    except DatabaseMissing as exc:
        console.print(f"[red]✗ {exc}[/]", highlight=False)
        return EXIT_DB
    except Exception as exc:
        # The masked URL only; a driver's message may quote the DSN, so show its class and first line.
        first = str(exc).splitlines()[0] if str(exc) else ""
        password = settings.database_password
        if password:
            first = first.replace(password, "***")
        console.print(f"[red]✗ cannot connect: {exc.__class__.__name__}: {first}[/]", highlight=False)
        return EXIT_DB
    console.print(
        f"[green]✓ connected[/] in {report.latency_ms} ms ({report.server_version})", highlight=False
    )
    code = EXIT_OK
    if report.schema == SchemaState.CURRENT.value:
        console.print(f"[green]✓ schema at revision {report.revision}[/] (this code's head)", highlight=False)
    else:
        console.print(
            f"[red]✗ schema {report.schema}[/]: database at {report.revision or 'nothing'}, code expects "
            f"{report.head}: run `subbot migrate`"
            + (" (or deploy the newer code)" if report.schema == SchemaState.AHEAD.value else ""),
            highlight=False,
        )
        code = EXIT_SCHEMA
    if settings.supabase_url and settings.supabase_service_key is not None:
        rest = await check_supabase_rest(
            settings.supabase_url, settings.supabase_service_key.get_secret_value()
        )
        mark = "[green]✓" if rest.ok else "[red]✗"
        console.print(f"{mark} Supabase REST {settings.supabase_url}: {rest.detail}[/]", highlight=False)
        if not rest.ok and code == EXIT_OK:
            code = EXIT_SUPABASE
    elif settings.supabase_url or settings.supabase_service_key is not None:
        console.print(
            "[yellow]! Supabase REST check skipped: set both SUPABASE_URL and SUPABASE_SERVICE_KEY[/]"
        )
    else:
        console.print("Supabase REST check skipped (SUPABASE_URL / SUPABASE_SERVICE_KEY not set)")
    return code


def main() -> int:
    console = Console(soft_wrap=True)
    try:
        settings = load_settings()
    except ConfigError as exc:
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]configuration error:[/] {exc}", highlight=False
        )
        return EXIT_CONFIG
    return asyncio.run(run_check(settings, console))
