"""Webhook mode: Telegram (the sandbox) POSTs updates to our HTTP server, with the secret header."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from subbot.app import SubbotApp
from subbot.config import TELEGRAM_WEBHOOK_PATH
from subbot.store.models import Payment, Subscription
from tests.e2e.conftest import World, buttons, text_has, wait_for_async
from tests.e2e.test_stars_journey import buy


@contextlib.asynccontextmanager
async def running(world: World) -> AsyncIterator[tuple[SubbotApp, str]]:
    async with world.serving(webhook=True) as pair:
        yield pair


def redelivered_payment(user_id: int, payment: Payment, update_id: int) -> dict[str, object]:
    """The successful_payment update exactly as Telegram would send it again."""
    user = {"id": user_id, "is_bot": False, "first_name": "Alice"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 10_000 + update_id,
            "date": 1_767_268_800,
            "chat": {"id": user_id, "type": "private", "first_name": "Alice"},
            "from": user,
            "successful_payment": {
                "currency": payment.currency,
                "total_amount": payment.amount_minor,
                "invoice_payload": payment.order_id,
                "telegram_payment_charge_id": payment.provider_payment_id,
                "provider_payment_charge_id": "",
            },
        },
    }


async def test_journey_over_webhook_and_duplicate_delivery_applied_once(world: World) -> None:
    async with running(world) as (app, base):
        alice = world.user("Alice")
        await buy(world, alice)
        await world.reply(alice, text_has("Payment received"))
        async with app.db.sessions() as s:
            payment = (await s.scalars(select(Payment))).one()
        secret = {"X-Telegram-Bot-Api-Secret-Token": app.settings.telegram_webhook_secret}
        url = base + TELEGRAM_WEBHOOK_PATH
        async with httpx.AsyncClient() as client:
            # Telegram redelivers an update it thinks failed: the same payment arrives three more times.
            for n in range(3):
                r = await client.post(
                    url, json=redelivered_payment(alice, payment, 900_000 + n), headers=secret
                )
                assert r.status_code == 200
            bad = await client.post(url, content=b"{not json", headers=secret)
            assert bad.status_code == 400
        async with app.db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Payment)) == 1
            assert await s.scalar(select(func.count()).select_from(Subscription)) == 1
        await wait_for_async(lambda: _outbox_idle(app))
        grants = [m for m in world.sandbox.messages_to(alice) if "Payment received" in (m.get("text") or "")]
        assert len(grants) == 1 and buttons(grants[0])


async def _outbox_idle(app: SubbotApp) -> bool:
    from subbot.store import outbox

    async with app.db.sessions() as s:
        return await outbox.backlog(s) == 0


@pytest.mark.parametrize("header", [None, "wrong"])
async def test_webhook_refuses_missing_or_wrong_secret(world: World, header: str | None) -> None:
    async with running(world) as (_app, base):
        alice = world.user("Alice")
        headers = {} if header is None else {"X-Telegram-Bot-Api-Secret-Token": header}
        update = {
            "update_id": 5,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": alice, "type": "private"},
                "from": {"id": alice, "is_bot": False, "first_name": "A"},
                "text": "/start",
            },
        }
        async with httpx.AsyncClient() as client:
            r = await client.post(base + TELEGRAM_WEBHOOK_PATH, json=update, headers=headers)
        assert r.status_code == 401
        assert world.sandbox.messages_to(alice) == []
