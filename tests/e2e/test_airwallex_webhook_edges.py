"""The Airwallex webhook endpoint under bad input: clear refusals, nothing changed, never fail open."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import func, select

from subbot.store.models import InboundEvent
from tests.e2e.card_world import card_world
from tests.e2e.conftest import World


async def test_without_a_secret_the_endpoint_refuses_and_health_says_so(world: World) -> None:
    async with world.serving() as (_app, base), httpx.AsyncClient() as client:
        r = await client.post(f"{base}/webhook/airwallex", json={"test": True})
        health = (await client.get(f"{base}/health")).json()
    assert r.status_code == 503 and "not configured" in r.json()["error"]
    assert health["components"]["payments"]["webhook_secret_configured"] is False


async def test_oversized_malformed_and_unknown_events(world: World) -> None:
    async with card_world(world) as cw:
        async with httpx.AsyncClient() as client:
            huge = await client.post(f"{cw.base}/webhook/airwallex", content=b"x" * (300 * 1024))
        assert huge.status_code == 413
        ts = str(int(world.clock.now().timestamp() * 1000))
        for body in (b"{not json", b"[1, 2]", json.dumps({"id": "", "name": "x"}).encode()):
            headers = {"x-timestamp": ts, "x-signature": cw.aw.sign(body, ts)}
            async with httpx.AsyncClient() as client:
                r = await client.post(f"{cw.base}/webhook/airwallex", content=body, headers=headers)
            assert r.status_code == 400, body
        nul = {"id": "evt_nul_\u0000", "name": "account.something_new", "data": {"object": {}}}
        assert (await cw.post_event(nul)).status_code == 400
        odd = {"id": "evt_odd_\u202e", "name": "account.something_new", "data": {"object": {"x": "🙂\u0000"}}}
        assert (await cw.post_event(odd)).status_code == 200
        async with cw.app.db.sessions() as s:
            row = (
                await s.scalars(select(InboundEvent).where(InboundEvent.kind == "account.something_new"))
            ).one()
            total = await s.scalar(select(func.count()).select_from(InboundEvent))
        assert row.applied_at is not None
        assert (await cw.post_event(odd)).status_code == 200  # a duplicate changes nothing
        async with cw.app.db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(InboundEvent)) == total


async def test_payments_log_has_one_greppable_line_per_event(world: World, tmp_path: Path) -> None:
    from subbot.logging_setup import configure_logging, reset_logging

    async with card_world(world) as cw:
        configure_logging(cw.app.settings)
        try:
            alice = world.user("Alice")
            msg = await cw.choose_card(alice)
            await cw.pay_on_page(msg)
            from tests.e2e.conftest import text_has

            await world.reply(alice, text_has("Payment received"))
            async with httpx.AsyncClient() as client:
                await client.post(f"{cw.base}/webhook/airwallex", json={"test": True})
        finally:
            reset_logging()
    log = (cw.app.settings.log_dir / "telegram_subscription_bot_payments.log").read_text()
    lines = [line for line in log.splitlines() if "payment" in line]
    order_id = cw.order_id(msg)
    intent_id = next(iter(cw.aw.intents))
    assert any("created" in line and order_id in line and intent_id in line for line in lines)
    assert any("succeeded" in line and order_id in line and intent_id in line for line in lines)
    assert any("rejected" in line for line in lines)
    assert "e2e-key" not in log and cw.aw.intents[intent_id]["client_secret"] not in log
