"""Payments page over HTTP: filters and pages, orders needing a look, and "process pending payments"
through the Airwallex sandbox (both databases)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.services.card_checkout import create_card_order
from subbot.store import users
from subbot.store.models import AuditEntry, Order, OutboxJob, Payment, Subscription
from tests.web.dashboard.conftest import Site, SiteFactory, csrf_of

XSS = "<script>alert(1)</script>"


async def add_member(site: Site, user_id: int, username: str | None = None, name: str = "Member") -> None:
    async with site.app.db.write() as session:
        await users.upsert(session, user_id, site.clock.now(), first_name=name, username=username)


async def add_order(
    site: Site,
    order_id: str,
    user_id: int,
    *,
    provider: str = "airwallex",
    status: str = "pending",
    age: timedelta,
) -> None:
    created = site.clock.now() - age
    currency, amount = ("XTR", 100) if provider == "stars" else ("USD", 200)
    async with site.app.db.write() as session:
        session.add(
            Order(
                id=order_id, user_id=user_id, plan_code="standard", provider=provider, amount_minor=amount,
                currency=currency, status=status, created_at=created, expires_at=created + timedelta(hours=1),
            )
        )  # fmt: skip


async def add_payment(
    site: Site, ref: str, user_id: int, *, provider: str = "airwallex", at: datetime, **extra: Any
) -> None:
    await add_order(site, f"o-{ref}", user_id, provider=provider, status="paid", age=site.clock.now() - at)
    currency, amount = ("XTR", 100) if provider == "stars" else ("USD", 200)
    async with site.app.db.write() as session:
        session.add(
            Payment(
                order_id=f"o-{ref}", user_id=user_id, provider=provider, provider_payment_id=ref,
                amount_minor=amount, currency=currency, created_at=at, **extra,
            )
        )  # fmt: skip


async def count(site: Site, model: type, *where: Any) -> int:
    async with site.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_filters_dates_and_pages(site: Site) -> None:
    await site.admin()
    await add_member(site, 2001, "payer")
    now = site.clock.now()  # 2026-01-01 12:00 UTC
    await add_payment(site, "stars-1", 2001, provider="stars", at=now - timedelta(days=3))
    await add_payment(site, "card-1", 2001, at=now - timedelta(days=1))
    await add_payment(
        site, "card-refunded", 2001, at=now, status="refunded", refunded_minor=200, refunded_at=now
    )
    client = await site.signed_in()

    page = await client.get("/dashboard/payments")
    assert page.status_code == 200
    assert "3 payments" in page.text
    assert all(f"o-{ref}" in page.text for ref in ("stars-1", "card-1", "card-refunded"))
    stars = await client.get("/dashboard/payments", params={"provider": "stars"})
    assert "1 payment " in stars.text and "o-stars-1" in stars.text and "o-card-1" not in stars.text
    refunded = await client.get("/dashboard/payments", params={"status": "refunded"})
    assert "o-card-refunded" in refunded.text and "o-card-1" not in refunded.text
    # "to" takes the whole day: 2025-12-31 holds card-1 (11:59 that day would count too).
    window = await client.get("/dashboard/payments", params={"from": "2025-12-29", "to": "2025-12-31"})
    assert "o-stars-1" in window.text and "o-card-1" in window.text and "o-card-refunded" not in window.text
    partial = await client.get(
        "/dashboard/payments", params={"provider": "airwallex"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in partial.text and "o-card-1" in partial.text and "o-stars-1" not in partial.text
    assert "/dashboard/export/payments.csv?provider=airwallex" in partial.text

    for params, message in (
        ({"from": "31/12/2025"}, "must look like 2026-01-31"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "must not be after"),
        ({"status": "bogus"}, "unknown payment status"),
        ({"provider": "paypal"}, "unknown provider"),
    ):
        bad = await client.get("/dashboard/payments", params=params)
        assert bad.status_code == 200 and message in bad.text, params


async def test_pages_of_fifty(site: Site) -> None:
    await site.admin()
    await add_member(site, 2002)
    now = site.clock.now()
    for i in range(52):  # p00 is the oldest; the newest come first
        await add_payment(site, f"p{i:02d}", 2002, at=now - timedelta(minutes=51 - i))
    client = await site.signed_in()
    first = await client.get("/dashboard/payments")
    assert "52 payments · page 1 of 2" in first.text and "o-p51" in first.text and "o-p01" not in first.text
    assert "page=2" in first.text
    second = await client.get("/dashboard/payments", params={"page": "2"})
    assert "o-p01" in second.text and "o-p00" in second.text and "o-p02" not in second.text
    junk = await client.get("/dashboard/payments", params={"page": "-1"})
    assert junk.status_code == 200 and "page 1 of 2" in junk.text


async def test_orders_needing_a_look_and_no_airwallex(site: Site) -> None:
    await site.admin()
    await add_member(site, 2003, name=XSS, username="x_user")
    await add_order(site, "o-stuck", 2003, age=timedelta(minutes=20))
    await add_order(site, "o-young", 2003, age=timedelta(minutes=5))
    await add_order(site, "o-mismatch", 2003, status="amount_mismatch", age=timedelta(days=1))
    await add_order(site, "o-stars-unpaid", 2003, provider="stars", age=timedelta(hours=1))
    client = await site.signed_in()
    page = (await client.get("/dashboard/payments")).text
    problems = page[page.index("Orders needing a look") : page.index("All payments")]
    assert "o-stuck" in problems and "o-mismatch" in problems and "amount mismatch" in problems
    assert "o-young" not in problems and "o-stars-unpaid" not in problems
    assert "<td>20 min</td>" in problems and "<td>24 h</td>" in problems
    assert XSS not in page
    assert "Airwallex is not configured" in problems
    assert 'action="/dashboard/payments/reconcile"' not in page
    sooner = (await client.get("/dashboard/payments", params={"older": "1"})).text
    assert "o-young" in sooner[: sooner.index("All payments")]

    # The button is not shown, but a POST anyway is answered with the reason and changes nothing.
    before = [await count(site, model) for model in (Order, Payment, AuditEntry, OutboxJob)]
    response = await client.post("/dashboard/payments/reconcile", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 409 and "Airwallex is not configured" in response.text
    assert [await count(site, model) for model in (Order, Payment, AuditEntry, OutboxJob)] == before


async def test_process_pending_payments_applies_a_payment_whose_webhook_was_lost(
    make_site: SiteFactory,
) -> None:
    aw = AirwallexSandbox(client_id="dash-client", api_key="dash-key", webhook_secret="whsec-dash")
    async with aw.serve() as aw_url:  # no webhook URL is set: every event is lost
        site: Site = await make_site(
            airwallex_client_id="dash-client",
            airwallex_api_key="dash-key",
            airwallex_webhook_secret="whsec-dash",
            airwallex_base_url=aw_url,
        )
        aw.now = lambda: site.clock.now().timestamp()
        await site.admin()
        await add_member(site, 2004, "cardholder")
        assert site.app.airwallex is not None
        paid = await create_card_order(site.app.ctx, site.app.airwallex, 2004, "standard", None)
        unpaid = await create_card_order(site.app.ctx, site.app.airwallex, 2004, "premium", None)
        await aw.pay(paid.intent_id)
        site.clock.advance(timedelta(minutes=30))
        client = await site.signed_in()
        page = (await client.get("/dashboard/payments")).text
        problems = page[page.index("Orders needing a look") : page.index("All payments")]
        assert paid.order_id in problems and unpaid.order_id in problems

        response = await client.post("/dashboard/payments/reconcile", data={"csrf_token": csrf_of(page)})
        assert response.status_code == 200
        report = response.text
        assert "Checked 2 card orders" in report
        applied = report[report.index("Applied (the webhook was lost)") : report.index("Still pending")]
        assert paid.order_id in applied and unpaid.order_id not in applied
        assert unpaid.order_id in report[report.index("Still pending") : report.index("Cancelled")]

        async with site.app.db.sessions() as session:
            order = await session.get(Order, paid.order_id)
            assert order is not None and order.status == "paid"
            assert (await session.get(Order, unpaid.order_id)).status == "pending"  # type: ignore[union-attr]
            entry = (
                await session.scalars(select(AuditEntry).where(AuditEntry.action == "payments_reconcile"))
            ).one()
        assert entry.actor == "dashboard:alice"
        assert entry.details["applied"] == [paid.order_id] and entry.details["checked"] == 2
        assert await count(site, Payment, Payment.order_id == paid.order_id) == 1
        assert await count(site, Subscription, Subscription.user_id == 2004) == 1
        assert await count(site, OutboxJob, OutboxJob.payload["user_id"].as_integer() == 2004) >= 1

        # Pressed again: nothing is applied twice.
        again = await client.post("/dashboard/payments/reconcile", data={"csrf_token": csrf_of(page)})
        assert again.status_code == 200
        assert await count(site, Payment) == 1 and await count(site, Subscription) == 1
