"""Card payments through the Airwallex sandbox: exactly once, verified, reconciled, refundable."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from subbot.sandbox.telegram.testing import wait_for
from subbot.services.reconcile import reconcile
from subbot.services.refunds import refund_order
from subbot.store.models import AuditEntry, InboundEvent, Order, Payment, Subscription
from tests.e2e.card_world import CardWorld, card_world
from tests.e2e.conftest import World, buttons, text_has, wait_for_async


async def count(cw: CardWorld, model: type, *where: Any) -> int:
    async with cw.app.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def order_row(cw: CardWorld, order_id: str) -> Order:
    async with cw.app.db.sessions() as s:
        order = await s.get(Order, order_id)
    assert order is not None
    return order


def grants(world: World, user: int) -> list[dict[str, Any]]:
    return [m for m in world.sandbox.messages_to(user) if "Payment received" in (m.get("text") or "")]


def succeeded_event(cw: CardWorld, order: Order, intent_id: str, **changes: Any) -> dict[str, Any]:
    obj = {
        "id": intent_id,
        "merchant_order_id": order.id,
        "amount": order.amount_minor / 100,
        "currency": order.currency,
        "status": "SUCCEEDED",
    }
    obj.update(changes)
    return {
        "id": f"evt_hand_{intent_id}_{len(changes)}",
        "name": "payment_intent.succeeded",
        "data": {"object": obj},
    }


async def test_card_purchase_end_to_end_through_the_hosted_page(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        assert cw.pay_url(msg).startswith(cw.base + "/pay/")
        assert (await cw.pay_on_page(msg)).status_code == 200
        grant = await world.reply(alice, text_has("Payment received"))
        assert await world.sandbox.open_invite_link(alice, buttons(grant)[0]["url"]) == "joined"
        order = await order_row(cw, cw.order_id(msg))
        assert (order.status, order.amount_minor, order.currency) == ("paid", 200, "USD")
        intent = cw.aw.intents[order.provider_ref or ""]
        assert intent["amount"] == 2 and intent["merchant_order_id"] == order.id
        assert intent["metadata"]["user_id"] == str(alice)


async def test_same_event_ten_times_concurrently_gives_one_activation_and_one_invite(world: World) -> None:
    async with card_world(world) as cw:
        cw.aw.webhook.mode(duplicates=10, concurrent=True)
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        await cw.aw.flush()
        await world.reply(alice, text_has("Payment received"))
        assert await count(cw, Payment) == 1 and await count(cw, Subscription) == 1
        assert await cw.jobs("grant_access") == 1
        ok = [d for d in cw.aw.deliveries if d.name == "payment_intent.succeeded" and d.status_code == 200]
        assert len(ok) == 10
        await wait_for_async(lambda: _idle(cw))
        assert len(grants(world, alice)) == 1


async def _idle(cw: CardWorld) -> bool:
    from subbot.store import outbox

    async with cw.app.db.sessions() as s:
        return await outbox.backlog(s) == 0


async def test_out_of_order_cancel_never_undoes_a_success(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        await world.reply(alice, text_has("Payment received"))
        order = await order_row(cw, cw.order_id(msg))
        late_cancel = {
            "id": "evt_late_cancel",
            "name": "payment_intent.cancelled",
            "data": {
                "object": {"id": order.provider_ref, "merchant_order_id": order.id, "status": "CANCELLED"}
            },
        }
        assert (await cw.post_event(late_cancel)).status_code == 200
        assert (await order_row(cw, order.id)).status == "paid"
        assert await count(cw, Subscription, Subscription.status == "active") == 1


async def test_cancel_arriving_before_success_still_ends_paid(world: World) -> None:
    async with card_world(world) as cw:
        cw.aw.webhook.mode(out_of_order=True, hold=60)  # Airwallex's events are held back
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        order = await order_row(cw, cw.order_id(msg))
        cancel = {
            "id": "evt_cancel_first",
            "name": "payment_intent.cancelled",
            "data": {"object": {"id": order.provider_ref, "merchant_order_id": order.id}},
        }
        assert (await cw.post_event(cancel)).status_code == 200
        assert (await order_row(cw, order.id)).status == "cancelled"
        cw.aw.webhook.release()
        await world.reply(alice, text_has("Payment received"))
        assert (await order_row(cw, order.id)).status == "paid"


async def test_forged_and_unsigned_webhooks_are_refused_and_store_nothing(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        order = await order_row(cw, cw.order_id(msg))
        event = succeeded_event(cw, order, order.provider_ref or "")
        async with httpx.AsyncClient() as client:
            url = f"{cw.base}/webhook/airwallex"
            # The runbook's check: the endpoint is up and refuses an unsigned body.
            plain = await client.post(url, json={"test": True})
            ts = str(int(world.clock.now().timestamp() * 1000))
            forged = await client.post(url, json=event, headers={"x-timestamp": ts, "x-signature": "ab" * 32})
        assert plain.status_code == 401 and plain.json()["error"]
        assert forged.status_code == 401
        assert await count(cw, InboundEvent, InboundEvent.kind == "payment_intent.succeeded") == 0
        assert await count(cw, Payment) == 0
        assert (await order_row(cw, order.id)).status == "pending"


async def test_tampered_amount_or_currency_flags_the_order_and_grants_nothing(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        order = await order_row(cw, cw.order_id(msg))
        cheap = succeeded_event(cw, order, order.provider_ref or "", amount=0.02)
        other = succeeded_event(cw, order, order.provider_ref or "", currency="JPY", amount=200)
        other["id"] = "evt_currency"
        assert (await cw.post_event(cheap)).status_code == 200
        assert (await cw.post_event(other)).status_code == 200
        assert (await order_row(cw, order.id)).status == "amount_mismatch"
        assert await count(cw, Payment) == 0 and await count(cw, Subscription) == 0
        assert await count(cw, AuditEntry, AuditEntry.action == "payment_amount_mismatch") == 2


async def test_event_before_its_order_exists_is_applied_once_the_order_exists(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        real = await order_row(cw, cw.order_id(msg))
        # The event names an order id that is not committed yet (the earlier system's race).
        early = succeeded_event(cw, real, "int_early", merchant_order_id="order-not-yet")
        assert (await cw.post_event(early)).status_code == 200
        assert await count(cw, InboundEvent, InboundEvent.applied_at.is_(None)) == 1
        async with cw.app.ctx.transaction() as s:
            s.add(
                Order(
                    id="order-not-yet",
                    user_id=alice,
                    plan_code="standard",
                    provider="airwallex",
                    amount_minor=200,
                    currency="USD",
                    status="pending",
                    created_at=world.clock.now(),
                    expires_at=world.clock.now() + timedelta(hours=1),
                )
            )
        assert cw.app.airwallex is not None
        report = await reconcile(cw.app.ctx, cw.app.airwallex)
        assert report.events_reapplied == 1
        assert (await order_row(cw, "order-not-yet")).status == "paid"
        await world.reply(alice, text_has("Payment received"))


async def test_lost_webhook_is_recovered_by_reconciliation(world: World) -> None:
    async with card_world(world) as cw:
        cw.aw.webhook.mode(drop=True)
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        assert (await order_row(cw, cw.order_id(msg))).status == "pending"
        assert cw.app.airwallex is not None
        too_soon = await reconcile(cw.app.ctx, cw.app.airwallex)
        assert too_soon.checked == 0  # younger than the 3-minute grace: the webhook may still come
        world.clock.advance(timedelta(minutes=5))
        report = await reconcile(cw.app.ctx, cw.app.airwallex)
        assert report.applied == [cw.order_id(msg)]
        await world.reply(alice, text_has("Payment received"))
        again = await reconcile(cw.app.ctx, cw.app.airwallex)
        assert again.applied == [] and await count(cw, Payment) == 1


async def test_i_have_paid_racing_the_webhook_gives_one_activation(world: World) -> None:
    async with card_world(world) as cw:
        cw.aw.webhook.mode(duplicates=3, concurrent=True)
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        paid_button = buttons(msg)[1]
        assert paid_button["callback_data"].startswith("paid:")
        await cw.pay_on_page(msg)
        await asyncio.gather(
            *(
                world.sandbox.press_button(alice, msg["message_id"], paid_button["callback_data"])
                for _ in range(3)
            )
        )
        await cw.aw.flush()
        await world.reply(alice, text_has("Payment received"))
        await wait_for_async(lambda: _idle(cw))
        assert await count(cw, Payment) == 1 and await count(cw, Subscription) == 1
        assert len(grants(world, alice)) == 1


async def test_i_have_paid_before_paying_says_so(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        qid = await world.sandbox.press_button(alice, msg["message_id"], buttons(msg)[1]["callback_data"])
        await wait_for(lambda: world.sandbox.callback_answer(qid) is not None)
        answer = world.sandbox.callback_answer(qid) or {}
        assert "not received this payment yet" in answer.get("text", "")


async def test_failure_while_applying_is_retried_by_airwallex_and_applied_once(
    world: World, monkeypatch: Any
) -> None:
    from subbot.services import card_payments

    real = card_payments.activate
    calls = {"n": 0}

    async def crash_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("database went away mid-transaction")
        return await real(*args, **kwargs)

    monkeypatch.setattr(card_payments, "activate", crash_once)
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        await world.reply(alice, text_has("Payment received"))
        statuses = [d.status_code for d in cw.aw.deliveries if d.name == "payment_intent.succeeded"]
        assert statuses[0] == 503 and statuses[-1] == 200
        assert (
            await count(cw, Payment) == 1
            and await count(cw, InboundEvent, InboundEvent.applied_at.is_not(None)) >= 1
        )


async def test_provider_down_offers_stars(world: World) -> None:
    async with card_world(world) as cw:
        cw.aw.faults.fail_next(10, status=503)
        alice = world.user("Alice")
        w = cw.world
        await w.sandbox.send_text(alice, "/start")
        menu = await w.reply(alice, text_has("Choose a plan"))
        await w.sandbox.press_button(alice, menu["message_id"], "plan:standard")
        choice = await w.reply(alice, text_has("how would you like to pay"))
        await w.sandbox.press_button(alice, choice["message_id"], "pay:card:standard")
        down = await w.reply(alice, text_has("Card payments are unavailable"))
        assert buttons(down)[0]["callback_data"] == "pay:stars:standard"
        cw.aw.faults.clear()


async def test_refund_revokes_access_and_tells_the_member(world: World) -> None:
    async with card_world(world) as cw:
        alice = world.user("Alice")
        msg = await cw.choose_card(alice)
        await cw.pay_on_page(msg)
        grant = await world.reply(alice, text_has("Payment received"))
        assert await world.sandbox.open_invite_link(alice, buttons(grant)[0]["url"]) == "joined"
        await wait_for_async(lambda: _joined(cw, alice))
        done = await refund_order(cw.app.ctx, cw.order_id(msg), actor="test", airwallex=cw.app.airwallex)
        assert done.amount.minor == 200
        await cw.aw.settle_refund(done.provider_refund_id)
        await cw.aw.flush()
        await world.reply(alice, text_has("refunded"))
        await wait_for(lambda: world.sandbox.member_status(world.group, alice) == "left")
        assert await count(cw, Subscription, Subscription.status == "revoked") == 1
        async with cw.app.db.sessions() as s:
            payment = (await s.scalars(select(Payment))).one()
        assert (payment.status, payment.refunded_minor) == ("refunded", 200)
        from subbot.services.refunds import RefundRefused

        try:
            await refund_order(cw.app.ctx, cw.order_id(msg), actor="test", airwallex=cw.app.airwallex)
        except RefundRefused as exc:
            assert "already refunded" in str(exc)
        else:
            raise AssertionError("a second refund must be refused")


async def _joined(cw: CardWorld, user: int) -> bool:
    from subbot.store.models import Membership

    async with cw.app.db.sessions() as s:
        state = await s.scalar(select(Membership.state).where(Membership.user_id == user))
    return state == "joined"
