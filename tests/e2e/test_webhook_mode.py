"""Webhook mode: Telegram (the sandbox) POSTs updates to our HTTP server, with the secret header."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select, text

from subbot.app import SubbotApp
from subbot.config import TELEGRAM_WEBHOOK_PATH
from subbot.store.models import Payment, Subscription, User
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


def start_update(user_id: int, update_id: int) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Bea"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def _known_users(app: SubbotApp) -> int:
    async with app.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(User)) or 0)


async def test_webhook_refuses_bad_bodies_and_methods_and_changes_nothing(world: World) -> None:
    async with running(world) as (app, base):
        bea = world.user("Bea")
        world.sandbox.world.bot_for(None).started_by.add(bea)  # she wrote to the bot: it may answer her
        secret = {"X-Telegram-Bot-Api-Secret-Token": app.settings.telegram_webhook_secret}
        url = base + TELEGRAM_WEBHOOK_PATH
        users_before = await _known_users(app)
        async with httpx.AsyncClient() as client:
            for body in [b"[]", b'"x"', b"", b'{"update_id": "abc"}', b'{"update_id": 1, "message": 5}']:
                r = await client.post(url, content=body, headers=secret)
                assert (r.status_code, r.json()) == (400, {"ok": False, "error": "malformed update"}), body
            broken_utf8 = json.dumps(start_update(bea, 7)).encode().replace(b"Bea", b"B\xff\xfe")
            assert (await client.post(url, content=broken_utf8, headers=secret)).status_code == 400
            huge = b'{"update_id": 8, "padding": "' + b"x" * (2 * 1024 * 1024) + b'"}'
            r = await client.post(url, content=huge, headers=secret)
            assert (r.status_code, r.json()["error"]) == (413, "body too large")
            r = await client.get(url, headers=secret)
            assert r.status_code == 405 and r.headers["allow"] == "POST"
            # after all that, the same connection pool still gets a real update handled
            r = await client.post(url, json=start_update(bea, 9), headers=secret)
            assert (r.status_code, r.json()) == (200, {"ok": True})
        assert await _known_users(app) == users_before + 1
        replies = world.sandbox.messages_to(bea)
        assert len(replies) == 1 and buttons(replies[0])


async def test_webhook_answers_503_while_the_database_fails_and_the_redelivery_is_handled(
    world: World,
) -> None:
    async with running(world) as (app, base):
        bea = world.user("Bea")
        world.sandbox.world.bot_for(None).started_by.add(bea)  # she wrote to the bot: it may answer her
        secret = {"X-Telegram-Bot-Api-Secret-Token": app.settings.telegram_webhook_secret}
        url = base + TELEGRAM_WEBHOOK_PATH
        async with app.db.write() as s:  # the users table disappears: every /start fails to record its sender
            await s.execute(text("ALTER TABLE users RENAME TO users_away"))
        try:
            async with httpx.AsyncClient() as client:
                r = await client.post(url, json=start_update(bea, 11), headers=secret)
            assert (r.status_code, r.json()["error"]) == (503, "temporarily unavailable")
            assert world.sandbox.messages_to(bea) == []
        finally:
            async with app.db.write() as s:
                await s.execute(text("ALTER TABLE users_away RENAME TO users"))
        async with httpx.AsyncClient() as client:  # Telegram delivers the same update again
            r = await client.post(url, json=start_update(bea, 11), headers=secret)
        assert r.status_code == 200
        assert len(world.sandbox.messages_to(bea)) == 1
        async with app.db.sessions() as s:
            assert await s.get(User, bea) is not None
