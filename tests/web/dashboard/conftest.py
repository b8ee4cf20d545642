"""The real web app in-process (httpx over ASGI) with a manual clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from subbot.app import SubbotApp
from subbot.config import load_settings
from subbot.domain.clock import ManualClock
from subbot.services import admin_accounts
from subbot.services.admin_accounts import create_admin
from subbot.store.migrate import upgrade
from subbot.store.models import Base
from subbot.telegram.limiter import Limits
from subbot.web.server import create_web_app

TOKEN = "777201:dashboard-test-token-not-a-secret-abcd"
GROUP = -1001234500001
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    app: SubbotApp
    web: Any
    clock: ManualClock
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, ip: str = "127.0.0.1", scheme: str = "http") -> httpx.AsyncClient:
        """A browser of its own (its own cookies), seen by the server as coming from ``ip``."""
        transport = httpx.ASGITransport(app=self.web, client=(ip, 50000))
        client = httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1")
        self.clients.append(client)
        return client

    async def admin(self, name: str = "alice", password: str = PASSWORD) -> None:
        await create_admin(self.app.db, self.clock, name, password, "test")

    async def login(
        self, client: httpx.AsyncClient, name: str = "alice", password: str = PASSWORD
    ) -> httpx.Response:
        page = await client.get("/dashboard/login")
        return await client.post(
            "/dashboard/login",
            data={"name": name, "password": password, "csrf_token": csrf_of(page.text), "next": ""},
        )

    async def signed_in(self, name: str = "alice", ip: str = "127.0.0.1") -> httpx.AsyncClient:
        client = self.client(ip)
        response = await self.login(client, name)
        assert response.status_code == 303, response.text
        return client

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: "nothing changed" is checked against this."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with self.app.db.sessions() as session:
            for table in Base.metadata.sorted_tables:
                rows = (await session.execute(select(table))).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


SiteFactory = Callable[..., Any]


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id still, with test-sized cost: the production cost (64 MiB, 3 passes) per login adds minutes."""
    monkeypatch.setattr(
        admin_accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(admin_accounts, "_dummy_hash", None)


@pytest.fixture
async def make_site(db_url: str, tmp_path: Path) -> AsyncIterator[SiteFactory]:
    """Build the app with setting overrides (once per test); stopped afterwards."""
    sites: list[Site] = []

    async def make(**overrides: Any) -> Site:
        values: dict[str, Any] = {
            "_env_file": None,
            "bot_token": TOKEN,
            "group_id": GROUP,
            "telegram_api_url": "http://127.0.0.1:9",  # never reached: actions only queue outbox jobs
            "database_url": db_url,
            "lock_dir": tmp_path,
            "log_dir": tmp_path / "logs",
        }
        values.update(overrides)
        clock = ManualClock()
        app = SubbotApp(load_settings(**values), clock=clock, limits=Limits(enabled=False))
        await upgrade(app.db)
        await app.prepare()
        site = Site(app, create_web_app(app), clock)
        sites.append(site)
        return site

    yield make
    for site in sites:
        for client in site.clients:
            await client.aclose()
        await site.app.stop()


@pytest.fixture
async def site(make_site: SiteFactory) -> Site:
    made: Site = await make_site()
    return made
