"""/health and /metrics on the real running process (Telegram sandbox, real app); the monitor against it."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from prometheus_client import REGISTRY

from subbot.ops.checks import Status
from subbot.ops.monitor import Monitor
from subbot.store.db import create_database
from subbot.web.health import probe_for
from tests.e2e import conftest as e2e
from tests.e2e.conftest import World, text_has

world = e2e.world  # the e2e world (Telegram sandbox + real app), on both databases


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_health_ok_on_a_healthy_app(world: World) -> None:
    async with world.serving() as (_app, base), httpx.AsyncClient() as client:
        response = await client.get(f"{base}/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok", body
        assert body["version"] and body["uptime_seconds"] >= 0 and body["mode"] == "polling"
        parts = body["components"]
        assert parts["database"]["status"] == "ok" and parts["database"]["latency_ms"] < 100
        assert parts["workers"]["outbox_backlog"] == 0 and parts["workers"]["expiries_due"] == 0
        assert parts["payments"]["airwallex_configured"] is False and parts["payments"]["stars"] is True
        assert parts["maintenance"]["enabled"] is False
        assert set(parts) == {"database", "telegram", "payments", "workers", "maintenance"}


async def test_health_is_cached_within_its_ttl(world: World) -> None:
    async with world.serving() as (app, base), httpx.AsyncClient() as client:
        first = (await client.get(f"{base}/health")).json()
        second = (await client.get(f"{base}/health")).json()
        await client.get(f"{base}/metrics")  # a scrape shares the same cached measurement
        assert probe_for(app).db_round_trips == 1
        assert first["cached"] is False and second["cached"] is True


async def test_health_503_when_the_database_is_down(world: World) -> None:
    async with world.serving() as (app, base), httpx.AsyncClient() as client:
        real = app.db
        app.db = create_database(f"postgresql+asyncpg://u:p@127.0.0.1:{closed_port()}/x", null_pool=True)
        try:
            response = await client.get(f"{base}/health")
        finally:
            await app.db.dispose()
            app.db = real
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down" and body["components"]["database"]["status"] == "down"
        metrics = (await client.get(f"{base}/metrics")).text  # cached: still the failed measurement
        assert "subbot_db_up 0.0" in metrics


async def test_health_degraded_with_airwallex_but_no_webhook_secret(world: World) -> None:
    airwallex: dict[str, Any] = {
        "airwallex_client_id": "client",
        "airwallex_api_key": "key-for-tests-0123456789",
        "airwallex_base_url": f"http://127.0.0.1:{closed_port()}",
    }
    async with world.serving(**airwallex) as (_app, base), httpx.AsyncClient() as client:
        response = await client.get(f"{base}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"]["payments"]["status"] == "degraded"
    assert body["components"]["payments"]["webhook_secret_configured"] is False


async def test_health_in_webhook_mode_reports_telegrams_view(world: World) -> None:
    async with world.serving(webhook=True) as (_app, base), httpx.AsyncClient() as client:
        body = (await client.get(f"{base}/health")).json()
    telegram = body["components"]["telegram"]
    assert body["mode"] == "webhook" and telegram["status"] == "ok", telegram
    assert telegram["webhook"]["url_set"] is True and telegram["webhook"]["pending_update_count"] == 0


async def test_metrics_expose_the_named_metrics(world: World) -> None:
    def updates() -> float:
        return REGISTRY.get_sample_value("subbot_update_handling_seconds_count") or 0.0

    before = updates()
    async with world.serving() as (_app, base), httpx.AsyncClient() as client:
        alice = world.user("Alice")
        await world.sandbox.send_text(alice, "/start")
        await world.reply(alice, text_has(""))
        refused = await client.post(f"{base}/webhook/airwallex", content=b"{}")
        assert refused.status_code == 503  # no secret configured: refused, and counted
        response = await client.get(f"{base}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "subbot_update_handling_seconds_bucket",
        "subbot_update_errors_total",
        "subbot_db_query_seconds",
        "subbot_outbox_backlog",
        "subbot_active_members",
        "subbot_payments_total",
        "subbot_process_resident_memory_bytes",
        'subbot_webhook_rejected_total{provider="airwallex",reason="not_configured"}',
    ):
        assert name in text, name
    assert updates() > before
    rss = REGISTRY.get_sample_value("subbot_process_resident_memory_bytes")
    assert rss is not None and rss > 10 * 1024 * 1024


async def test_monitor_against_the_running_app(world: World) -> None:
    async with world.serving() as (app, _base):
        settings = app.settings
        async with Monitor(settings, clock=world.clock, alerts=False) as monitor:
            checks = ["bot", "database", "payment", "webhook", "admin", "dashboard", "automation"]
            results = {r.component: r for r in await monitor.check(checks)}
    assert {n: r.status for n, r in results.items()} == {
        "bot": Status.OK,
        "database": Status.OK,
        "payment": Status.OK,
        "webhook": Status.OK,
        "admin": Status.OK,
        "dashboard": Status.OK,
        "automation": Status.OK,
    }, {n: r.summary for n, r in results.items()}
    assert results["dashboard"].summary.startswith("login page answered HTTP 200")
    assert isinstance(results["payment"].details["rejected_webhooks"], int)  # read from the app's /metrics
